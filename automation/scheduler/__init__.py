"""The persistent scheduler: APScheduler on the project's database, one leader at a time."""
