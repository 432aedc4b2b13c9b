"""Test rules (JOB7xx): jobs the project's tests never run, or never run into a failure."""
