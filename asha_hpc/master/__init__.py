"""What runs in the master process: the loop (loop.Master), the state replayed from the
journal, and the policies it applies (pool, autoworkers, retention, time limits,
the lease that keeps a second master out).
"""
