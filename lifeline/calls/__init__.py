"""A call's life: the state machine, the handlers of each leg, the unit of work and the monitor."""
