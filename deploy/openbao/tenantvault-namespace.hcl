# Upstream policy for tenantvault's own token, `namespace` tenancy strategy.
#
# For: root `tenantvault` (--upstream-root), KV mount `secret` (--upstream-kv-mount), no
# operator namespace (--upstream-namespace unset), OpenBao >= 2.3 or Vault Enterprise.
# Write it in the root namespace:   bao policy write tenantvault tenantvault-namespace.hcl
# For another root, replace every `tenantvault/` path segment (not the policy names
# `tenantvault-tenant`). See README.md here for the AppRole setup.
#
# Layout upstream: tenantvault's own sealed records live in the namespace `tenantvault`
# (KV v2 mount `secret/`, under `_records/`); tenant `acme` is the namespace
# `tenantvault/acme` with its own `secret/` (KV v2) and `transit/`, reached by tenant
# requests only with a tenant-scoped token (policy `tenantvault-tenant` in that namespace).
# This token itself never reads or writes tenant data.

# --- tenantvault's own token ---------------------------------------------------------------

# Learn its TTL at start with a token (file or env); an AppRole login gets it from the login.
path "auth/token/lookup-self" { capabilities = ["read"] }
# Renew itself at 2/3 of its TTL (the renewal service, and inline without a supervisor).
path "auth/token/renew-self" { capabilities = ["update"] }

# --- choosing the strategy -------------------------------------------------------------------

# `--upstream-tenancy auto` (the default) picks `namespace` when this LIST succeeds. Not
# needed with `--upstream-tenancy namespace`: delete it then (it shows top-level names).
path "sys/namespaces/" { capabilities = ["list"] }

# --- the root namespace and the tenants' namespaces (= NamespaceTenancy.service_policy()) ---

# Find or create the namespace `tenantvault` that holds everything of tenantvault.
path "sys/namespaces/tenantvault" { capabilities = ["read", "create", "update"] }
# Create, look up (while it is deleting) and delete a tenant's namespace `tenantvault/<id>`.
path "tenantvault/sys/namespaces/*" { capabilities = ["read", "create", "update", "delete"] }
# Enable `secret/` and `transit/` in a new tenant's namespace; disable and enable them
# again to wipe a tenant's mount (`sys/mounts/secret` disabled by the tenant).
path "tenantvault/+/sys/mounts/*" { capabilities = ["create", "update", "delete"] }
# Write the tenant token's policy (its two mounts only) and delete it first on deletion.
path "tenantvault/+/sys/policies/acl/tenantvault-tenant" { capabilities = ["create", "update", "delete"] }
# The token role tenant tokens come from: orphan, periodic, exactly that policy.
path "tenantvault/+/auth/token/roles/tenantvault-tenant" { capabilities = ["create", "update"] }
# Mint a tenant's scoped token; sudo: OpenBao requires it to mint a token in a child namespace.
path "tenantvault/+/auth/token/create/tenantvault-tenant" { capabilities = ["update", "sudo"] }

# --- tenantvault's own records (tenants, tokens, policies, audit config; sealed) ------------

# Check that the records' KV v2 mount exists in `tenantvault` ...
path "tenantvault/secret/config" { capabilities = ["read"] }
# ... and enable it there when it does not (the first start on a fresh upstream).
path "tenantvault/sys/mounts/secret" { capabilities = ["create", "update"] }
# Read and write records, always with check-and-set (no "patch", no "delete" of versions).
path "tenantvault/secret/data/_records/*" { capabilities = ["create", "read", "update"] }
# List records (tenants, a tenant's tokens) and delete a record with all its versions.
path "tenantvault/secret/metadata/_records/*" { capabilities = ["list", "delete"] }
