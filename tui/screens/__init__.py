"""One screen per module; each mode of the app starts on one of them."""
