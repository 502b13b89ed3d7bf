"""The gateway's REST API: routes declared with their OpenAPI description, auth, and the
one error handler that turns onebox errors into HTTP statuses. It acts through the domain
packages; the dashboard's pages are served beside it."""
