"""What runs inside a job: the entry point a backend starts (jobmain), the Trial a user's
training code sees, ranks of multi-rank trials, and the report file of command trials.
"""
