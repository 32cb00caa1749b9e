"""The embedded Keystone v3 subset."""
