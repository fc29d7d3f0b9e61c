"""What only reads an experiment folder: the data ``status``, ``best`` and ``export`` show
(status.py) and its text (text.py), jobs' logs and learning curves (observe.py), plots, the
HTML report (also rendered live), and exports to experiment trackers. cli.py parses arguments
and prints what these return.
"""
