"""Action items as tickets in the trackers teams use (Jira Cloud, Linear), both ways.

`base.py` is the small interface every tracker implements; `jira.py` and `linear.py` are the
two there are (a third is one more module); `sync.py` decides, field by field, which side's
change wins; `service.py` owns the rules: which tracker a channel uses, the work owed to
trackers (rows, like nudges), webhooks and the sweep's pull.
"""
