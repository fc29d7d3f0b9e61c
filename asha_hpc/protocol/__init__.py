"""The experiment folder on the shared filesystem: its layout and file names (expdir),
the journal and its records, the messages jobs and the master exchange, worker
hand-over files, and the filesystem helpers both sides use (watching, full disks).
"""
