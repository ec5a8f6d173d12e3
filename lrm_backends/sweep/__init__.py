"""``lrm sweep``: a grid of base models x compressions x tasks as one resumable command.

- :mod:`.spec` reads and checks the YAML spec (every mistake is one line naming the key
  path and the fix, before anything runs);
- :mod:`.plan` expands it into cells (compress once per base x compression, evaluate
  every variant on every task), each keyed by a hash of its full configuration, and
  says which are done;
- :mod:`.cell` runs one cell as the ``lrm compress`` / ``lrm eval`` command it is, in a
  subprocess with its own log, and marks it done;
- :mod:`.runner` runs the plan one cell after another, or as Ray tasks (evaluation
  cells depend on their compression cell through object refs), then ``lrm report``.
"""
