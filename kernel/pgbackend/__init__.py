"""The database backend: django-tenants' PostgreSQL backend, keeping a search path that is in force."""
