"""hospital_ext: a user package for fedsim — a policy, a model and a dataset of its own.

Nothing here is part of fedsim: the experiment YAML names these by import path
(`hospital_ext.push_gossip:PushGossip`, ...), and fedsim imports them in every process that runs
nodes. See docs/plugins.md.
"""
