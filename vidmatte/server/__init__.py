"""`vidmatte serve`: an HTTP API and a web page over the library, with jobs kept in SQLite.

    store.py     the job table (SQLite, WAL) and the files beside it (uploads, results)
    jobs.py      runner threads: one `matte_path` call per job, progress, cancel, restart policy
    stills.py    synchronous stills (`POST /api/remove`) on the shared engine
    uploads.py   request bodies streamed to disk under a size limit (multipart or raw)
    params.py    request parameters -> MatteOptions, checked like the command line's
    security.py  API keys, loopback-only hosts, cross-origin refusal, response headers
    app.py       the FastAPI application: routes, JSON errors
    main.py      `vidmatte serve`: options, the data directory lock, the model, uvicorn
    static/      the web page (plain HTML/JS/CSS)

Only `main.py` is imported by the command line; nothing here imports torch until the model is loaded.
"""
