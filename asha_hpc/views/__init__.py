"""What only reads an experiment folder: status data and text, plots, the HTML report
(also rendered live), and exports to experiment trackers.
"""
