"""The embedded Image service: a Glance v2 subset under /image (clients.md §3).

``service`` holds the rules (visibility, ownership, status changes) and the contract other
parts use (``get_image``); ``store`` the data files; ``fields`` and ``patch`` the request
checks; ``listing`` filters, sorting and paging; ``views`` the JSON shapes; ``routes`` HTTP.
"""
