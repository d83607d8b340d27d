# Upstream policy for tenantvault's own token, `prefix` tenancy strategy.
#
# For: root `tenantvault` (--upstream-root), KV mount `secret` (--upstream-kv-mount), transit
# mount `transit`, no operator namespace (--upstream-namespace unset); any Vault or OpenBao.
# Write it:   bao policy write tenantvault tenantvault-prefix.hcl
# For another root, replace `tenantvault/` in KV paths and `tenantvault.` in policy, role
# and key names. See README.md here for the AppRole setup.
#
# Layout upstream: tenant `acme`'s secrets are `secret/data/tenantvault/acme/<path>`, its
# transit keys `transit/keys/tenantvault.acme.<name>`, reached by tenant requests only with
# a tenant-scoped token (policy `tenantvault.tenant.acme`). tenantvault's own sealed records
# are under `secret/data/tenantvault/_records/` (tenant ids contain no '_'). This token only
# reads tenant data to delete it with the tenant.

# --- tenantvault's own token ---------------------------------------------------------------

# Learn its TTL at start with a token (file or env); an AppRole login gets it from the login.
path "auth/token/lookup-self" { capabilities = ["read"] }
# Renew itself at 2/3 of its TTL (the renewal service, and inline without a supervisor).
path "auth/token/renew-self" { capabilities = ["update"] }

# No `sys/namespaces/` here: with `--upstream-tenancy auto` the LIST is refused, and auto
# picks `prefix`. Prefer setting `--upstream-tenancy prefix` explicitly.

# --- tenantvault's own records (tenants, tokens, policies, audit config; sealed) ------------

# Check that the shared KV v2 mount exists (enabling it: `sys/mounts/secret` below).
path "secret/config" { capabilities = ["read"] }
# Read and write records, always with check-and-set (no "patch", no "delete" of versions).
path "secret/data/tenantvault/_records/*" { capabilities = ["create", "read", "update"] }
# List records (tenants, a tenant's tokens) and delete a record with all its versions
# (the wipe rule below covers it too; kept so that the records' needs stand on their own).
path "secret/metadata/tenantvault/_records/*" { capabilities = ["list", "delete"] }

# --- the shared mounts and the tenants (= PrefixTenancy.service_policy()) -------------------

# Enable the shared KV v2 mount on a fresh upstream (refused is fine if the operator did).
path "sys/mounts/secret" { capabilities = ["create", "update"] }
# Enable the shared transit mount likewise.
path "sys/mounts/transit" { capabilities = ["create", "update"] }
# Each tenant token's policy: its own KV folder and transit key names only.
path "sys/policies/acl/tenantvault.tenant.*" { capabilities = ["create", "update", "delete"] }
# The token role tenant tokens come from: orphan, periodic, exactly that policy.
path "auth/token/roles/tenantvault.tenant.*" { capabilities = ["create", "update", "delete"] }
# Mint a tenant's scoped token from its role.
path "auth/token/create/tenantvault.tenant.*" { capabilities = ["update"] }
# Wipe a deleted tenant's secrets (list its folder, delete each secret with its versions);
# also covers the records' folder above.
path "secret/metadata/tenantvault/*" { capabilities = ["list", "delete"] }
# List the shared transit mount's keys: a tenant's key listing is filtered from it, and a
# deleted tenant's keys are found in it (no tenant token may list other tenants' keys).
path "transit/keys" { capabilities = ["list"] }
# Allow deletion of (keys/<name>/config) and delete a deleted tenant's transit keys.
path "transit/keys/tenantvault.*" { capabilities = ["update", "delete"] }
