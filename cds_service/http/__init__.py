"""The HTTP edge: CDS Hooks routes, request parsing and CORS."""
