"""Glance's rules for /image (glance/policies/image.py; ../shared/spec/policy-and-tokens.md §4.2).

Who owns or sees an image (owner, visibility) is the image service's check: an image the
caller cannot see is 404, a visible one it may not change 403. A name may hold a path parameter
(``{action}``), filled in when a refusal names it."""

from __future__ import annotations

from novalite.api.policies.base import ADMIN, ANONYMOUS, ANY, MEMBER, READER, Rule, Table

IMAGES = "/image/v2/images"
IMG = IMAGES + "/{image_id}"
VERSIONS = Rule("(none: version document)", ANONYMOUS)

RULES: Table = {
    ("GET", "/image/versions"): VERSIONS,
    ("GET", "/image/"): VERSIONS,
    ("GET", "/image"): VERSIONS,
    ("GET", "/image/v2/schemas/image"): Rule("(none: schemas are shown to every token)", ANY),
    ("GET", "/image/v2/schemas/images"): Rule("(none: schemas are shown to every token)", ANY),
    ("POST", IMAGES): Rule("add_image", MEMBER),
    ("GET", IMAGES): Rule("get_images", READER),
    ("GET", IMAGES + "/"): Rule("get_image", READER),
    ("DELETE", IMAGES + "/"): Rule("delete_image", MEMBER),
    ("GET", IMG): Rule("get_image", READER),
    ("GET", IMG + "/tasks"): Rule("get_image", READER),
    ("PATCH", IMG): Rule("modify_image", MEMBER),
    ("DELETE", IMG): Rule("delete_image", MEMBER),
    ("PUT", IMG + "/file"): Rule("upload_image", MEMBER),
    # a reader cannot download (download_image needs member)
    ("GET", IMG + "/file"): Rule("download_image", MEMBER),
    ("POST", IMG + "/actions/{action}"): Rule("{action}", MEMBER),
    ("PUT", IMG + "/tags/{tag}"): Rule("modify_image", MEMBER),
    ("DELETE", IMG + "/tags/{tag}"): Rule("modify_image", MEMBER),
    # image members: the owner adds/removes, the member project answers (the service checks which)
    ("GET", "/image/v2/schemas/member"): Rule("(none: schemas are shown to every token)", ANY),
    ("GET", "/image/v2/schemas/members"): Rule("(none: schemas are shown to every token)", ANY),
    ("POST", IMG + "/members"): Rule("add_member", MEMBER),
    ("GET", IMG + "/members"): Rule("get_members", READER),
    ("GET", IMG + "/members/{member_id}"): Rule("get_member", READER),
    ("PUT", IMG + "/members/{member_id}"): Rule("modify_member", MEMBER),
    ("DELETE", IMG + "/members/{member_id}"): Rule("delete_member", MEMBER),
    # interoperable import: stage and glance-direct need modify_image; copy-image is admin-only
    # (copy_image), checked by the service once it knows the method
    ("PUT", IMG + "/stage"): Rule("modify_image", MEMBER),
    ("POST", IMG + "/import"): Rule("modify_image", MEMBER),
    ("GET", "/image/v2/info/import"): Rule("(none: import discovery is shown to every token)", ANY),
    ("GET", "/image/v2/info/stores"): Rule("(none: store discovery is shown to every token)", ANY),
    ("GET", "/image/v2/info/stores/detail"): Rule("stores_info_detail", ADMIN),
}
