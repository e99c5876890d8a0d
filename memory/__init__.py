"""Dadang's state: the database (users, identities, conversations, messages, outbox, notes).

`memory` depends on nothing else in the project, so every other package can build on it.
"""
