"""Known answers: what each environment's best (or a hand-written) policy scores, computed exactly or
by optimisation, and the policies themselves, one module per environment.

They are not learning agents: the scorers, the tests and the results pages read learned policies
against them. :mod:`~physrl.agents.reference.uniform` holds the uniformly random policy of any env.
Every policy maps a batch of observations (as the vector face returns them) to a batch of actions,
like ``agent.act``.
"""
