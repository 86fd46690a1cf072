"""Time: the one clock, the scheduler and its jobs planned from the database,
exactly-once markers, and which replica leads the scheduler."""
