"""The maze return challenge: :mod:`~physrl.training.challenge.scorer` plays a submission on the held-out
evaluation mazes and scores it, :mod:`~physrl.training.challenge.leaderboard` ranks the result files,
:mod:`~physrl.training.challenge.command` is ``physrl challenge``, and
:mod:`~physrl.training.challenge.demo` is ``make demo``.
"""
