"""The API keys the keyed test server is started with."""

ADMIN_KEY = "sdk-admin-key"
READ_KEY = "sdk-read-key"
