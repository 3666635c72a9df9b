"""The command's exit codes: what a script that calls `hypertui` can branch on."""

EXIT_OK = 0  # done; a sweep ended with every trial finished, diverged or pruned
EXIT_FAILED = 1  # a trial failed during the run (its traceback is in the run's log)
EXIT_BAD_INPUT = 2  # bad input: one clear line on stderr, never a traceback
EXIT_INTERRUPTED = 130  # interrupted (Ctrl-C, a cancel): the message says how to resume
