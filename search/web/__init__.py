"""``search serve``: the CLI's queries over HTTP (:mod:`search.web.app`), a web page at ``/``.

Nothing here is imported unless ``search serve`` runs: fastapi and uvicorn stay off the CLI's path.
"""
