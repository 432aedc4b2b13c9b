"""Enqueue-safety rules (JOB6xx): hazards at the places that hand work to a queue."""
