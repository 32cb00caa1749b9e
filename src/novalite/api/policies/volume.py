"""Cinder's rules for /volume/v3 (cinder/policies/*.py; ../shared/spec/policy-and-tokens.md §4.1).

Each route is also served under ``/volume/v3/{url_project_id}/...``: the table lists it once,
``api.policies.TABLE`` adds that form. Released Cinder (up to 2026.1) still ORs the legacy
owner rule in (any role on the project writes); these are master's secure-RBAC defaults, which
novalite enforces."""

from __future__ import annotations

from novalite.api.policies.base import ADMIN, ANONYMOUS, ANY, MEMBER, READER, Rule, Table, actions

V = "/volume/v3"
VOL = V + "/volumes/{volume_id}"
TYPE = V + "/types/{type_id}"
SNAP = V + "/snapshots/{snapshot_id}"
VERSIONS = Rule("(none: version document)", ANONYMOUS)
VA = "volume_extension:volume_actions:"

VOLUME_ACTIONS = actions(
    VA + "action",
    {
        "os-extend": Rule("volume:extend", MEMBER),
        "os-retype": Rule("volume:retype", MEMBER),
        "os-update_readonly_flag": Rule("volume:update_readonly_flag", MEMBER),
        "os-set_bootable": Rule(VA + "set_bootable", MEMBER),
        "os-set_image_metadata": Rule("volume_extension:volume_image_metadata:set", MEMBER),
        "os-unset_image_metadata": Rule("volume_extension:volume_image_metadata:remove", MEMBER),
        "os-show_image_metadata": Rule("volume_extension:volume_image_metadata:show", READER),
        "os-reserve": Rule(VA + "reserve", MEMBER),
        "os-unreserve": Rule(VA + "unreserve", MEMBER),
        "os-attach": Rule(VA + "attach", MEMBER),
        "os-begin_detaching": Rule(VA + "begin_detaching", MEMBER),
        "os-roll_detaching": Rule(VA + "roll_detaching", MEMBER),
        "os-detach": Rule(VA + "detach", MEMBER),
        "os-initialize_connection": Rule(VA + "initialize_connection", MEMBER),
        "os-terminate_connection": Rule(VA + "terminate_connection", MEMBER),
        "os-reset_status": Rule("volume_extension:volume_admin_actions:reset_status", ADMIN),
        "os-force_detach": Rule("volume_extension:volume_admin_actions:force_detach", ADMIN),
        "os-force_delete": Rule("volume_extension:volume_admin_actions:force_delete", ADMIN),
        # actions novalite does not serve, named as Cinder names them
        "revert": Rule("volume:revert_to_snapshot", MEMBER),
        "os-reimage": Rule("volume:reimage", MEMBER),
        "os-volume_upload_image": Rule(VA + "upload_image", MEMBER),
        "os-migrate_volume": Rule("volume_extension:volume_admin_actions:migrate_volume", ADMIN),
    },
)

RULES: Table = {
    ("GET", "/volume/"): VERSIONS,
    ("GET", "/volume"): VERSIONS,
    ("GET", V + "/"): VERSIONS,
    ("GET", V): VERSIONS,
    # volumes (another project's: 404)
    ("GET", V + "/volumes"): Rule("volume:get_all", READER),
    ("GET", V + "/volumes/detail"): Rule("volume:get_all", READER),
    ("GET", V + "/volumes/"): Rule("volume:get", READER),
    ("PUT", V + "/volumes/"): Rule("volume:update", MEMBER),
    ("DELETE", V + "/volumes/"): Rule("volume:delete", MEMBER),
    ("POST", V + "/volumes"): Rule("volume:create", MEMBER),
    ("GET", VOL): Rule("volume:get", READER),
    ("PUT", VOL): Rule("volume:update", MEMBER),
    ("DELETE", VOL): Rule("volume:delete", MEMBER),
    ("GET", VOL + "/metadata"): Rule("volume:get_volume_metadata", READER),
    ("POST", VOL + "/metadata"): Rule("volume:create_volume_metadata", MEMBER),
    ("PUT", VOL + "/metadata"): Rule("volume:update_volume_metadata", MEMBER),
    ("GET", VOL + "/metadata/{key}"): Rule("volume:get_volume_metadata", READER),
    ("PUT", VOL + "/metadata/{key}"): Rule("volume:update_volume_metadata", MEMBER),
    ("DELETE", VOL + "/metadata/{key}"): Rule("volume:delete_volume_metadata", MEMBER),
    ("POST", VOL + "/action"): VOLUME_ACTIONS,
    # attachments (3.27)
    ("GET", V + "/attachments"): Rule("volume:attachment_index", READER),
    ("GET", V + "/attachments/detail"): Rule("volume:attachment_index", READER),
    ("GET", V + "/attachments/{attachment_id}"): Rule("volume:attachment_show", READER),
    ("POST", V + "/attachments"): Rule("volume:attachment_create", MEMBER),
    ("PUT", V + "/attachments/{attachment_id}"): Rule("volume:attachment_update", MEMBER),
    ("DELETE", V + "/attachments/{attachment_id}"): Rule("volume:attachment_delete", MEMBER),
    ("POST", V + "/attachments/{attachment_id}/action"): actions(
        "volume:attachment_complete", {"os-complete": Rule("volume:attachment_complete", MEMBER)}
    ),
    # volume types: reads for all, writes admin
    ("GET", V + "/types"): Rule("volume_extension:type_get_all", READER),
    ("GET", TYPE): Rule("volume_extension:type_get", READER),
    ("POST", V + "/types"): Rule("volume_extension:type_create", ADMIN),
    ("PUT", TYPE): Rule("volume_extension:type_update", ADMIN),
    ("DELETE", TYPE): Rule("volume_extension:type_delete", ADMIN),
    ("GET", TYPE + "/extra_specs"): Rule("volume_extension:types_extra_specs:index", READER),
    ("POST", TYPE + "/extra_specs"): Rule("volume_extension:types_extra_specs:create", ADMIN),
    ("GET", TYPE + "/extra_specs/{key}"): Rule("volume_extension:types_extra_specs:show", READER),
    ("PUT", TYPE + "/extra_specs/{key}"): Rule("volume_extension:types_extra_specs:update", ADMIN),
    ("DELETE", TYPE + "/extra_specs/{key}"): Rule("volume_extension:types_extra_specs:delete", ADMIN),
    ("GET", TYPE + "/os-volume-type-access"): Rule("volume_extension:volume_type_access", ADMIN),
    ("POST", TYPE + "/action"): actions(
        "volume_extension:volume_type_access:addProjectAccess",
        {
            "addProjectAccess": Rule("volume_extension:volume_type_access:addProjectAccess", ADMIN),
            "removeProjectAccess": Rule("volume_extension:volume_type_access:removeProjectAccess", ADMIN),
        },
    ),
    # quotas: the target is the project in the URL (another project's: 403, in the route)
    ("GET", V + "/os-quota-sets/{project_id}"): Rule("volume_extension:quotas:show", READER),
    ("GET", V + "/os-quota-sets/{project_id}/defaults"): Rule("volume_extension:quotas:show", READER),
    ("PUT", V + "/os-quota-sets/{project_id}"): Rule("volume_extension:quotas:update", ADMIN),
    ("DELETE", V + "/os-quota-sets/{project_id}"): Rule("volume_extension:quotas:delete", ADMIN),
    ("GET", V + "/limits"): Rule("limits_extension:used_limits", READER),
    ("GET", V + "/os-services"): Rule("volume_extension:services:index", ADMIN),
    ("GET", V + "/os-availability-zone"): Rule("(none: availability zones are listed to every token)", ANY),
    ("GET", V + "/extensions"): Rule("(none: extensions are listed to every token)", ANY),
    # snapshots and backups (another project's: 404)
    ("GET", V + "/snapshots"): Rule("volume:get_all_snapshots", READER),
    ("GET", V + "/snapshots/detail"): Rule("volume:get_all_snapshots", READER),
    ("POST", V + "/snapshots"): Rule("volume:create_snapshot", MEMBER),
    ("GET", V + "/snapshots/{snapshot_id}"): Rule("volume:get_snapshot", READER),
    ("PUT", V + "/snapshots/{snapshot_id}"): Rule("volume:update_snapshot", MEMBER),
    ("DELETE", V + "/snapshots/{snapshot_id}"): Rule("volume:delete_snapshot", MEMBER),
    ("GET", V + "/backups"): Rule("backup:get_all", READER),
    ("GET", V + "/backups/detail"): Rule("backup:get_all", READER),
    ("POST", V + "/backups"): Rule("backup:create", MEMBER),
    ("GET", V + "/backups/{backup_id}"): Rule("backup:get", READER),
    ("DELETE", V + "/backups/{backup_id}"): Rule("backup:delete", MEMBER),
    ("POST", V + "/backups/{backup_id}/restore"): Rule("backup:restore", MEMBER),
    ("PUT", V + "/backups/{backup_id}"): Rule("backup:update", MEMBER),
    ("GET", SNAP + "/metadata"): Rule("volume:get_snapshot_metadata", READER),
    ("POST", SNAP + "/metadata"): Rule("volume:update_snapshot_metadata", MEMBER),
    ("PUT", SNAP + "/metadata"): Rule("volume:update_snapshot_metadata", MEMBER),
    ("GET", SNAP + "/metadata/{key}"): Rule("volume:get_snapshot_metadata", READER),
    ("PUT", SNAP + "/metadata/{key}"): Rule("volume:update_snapshot_metadata", MEMBER),
    ("DELETE", SNAP + "/metadata/{key}"): Rule("volume:delete_snapshot_metadata", MEMBER),
    ("POST", SNAP + "/action"): actions(
        "volume_extension:snapshot_admin_actions:reset_status",
        {
            "os-reset_status": Rule("volume_extension:snapshot_admin_actions:reset_status", ADMIN),
            "os-force_delete": Rule("volume_extension:snapshot_admin_actions:force_delete", ADMIN),
        },
    ),
    ("POST", V + "/backups/{backup_id}/action"): actions(
        "volume_extension:backup_admin_actions:reset_status",
        {
            "os-reset_status": Rule("volume_extension:backup_admin_actions:reset_status", ADMIN),
            "os-force_delete": Rule("volume_extension:backup_admin_actions:force_delete", ADMIN),
        },
    ),
}
