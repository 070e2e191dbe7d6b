"""``kubectl gate dashboard``: a local web UI on the loopback interface, acting with the user's own
kubeconfig credentials.

* :mod:`.guard`: the cross-site defences (session token, Host, Origin, Sec-Fetch-Site), pure.
* :mod:`.snapshot`: what the page shows, built from ``list``'s views and words, and the poller.
* :mod:`.actions`: a button's request as the ``kubectl gate`` command line it runs, and running it.
* :mod:`.server`: the HTTP server (the standard library's ``http.server``: the CLI gets no new
  dependency) and the static page in ``static/``.
"""
