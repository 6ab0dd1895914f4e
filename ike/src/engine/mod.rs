//! The sans-IO engine: every exchange's state machine, timers, and the outputs the caller drains.
