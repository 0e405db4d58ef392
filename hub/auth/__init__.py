"""Who is calling: API keys, OpenID Connect (console sign-in and JWT bearer tokens), the session cookie."""
