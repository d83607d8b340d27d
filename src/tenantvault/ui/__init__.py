"""The dashboard served at `/ui/`: static files shipped in the wheel, answered by `ui_reply`.

The page is a plain client of the JSON API: it signs in with a token the user types (kept
in a JavaScript variable only: never in storage, a cookie or a URL) and sends it as
`X-Vault-Token`. What it shows is what the server lets that token read, so a tenant admin's
page can only ever hold that tenant's numbers (scoping is the server's, never the page's).
"""

from tenantvault.ui._static import UI_HEADERS, ui_reply

__all__ = ["UI_HEADERS", "ui_reply"]
