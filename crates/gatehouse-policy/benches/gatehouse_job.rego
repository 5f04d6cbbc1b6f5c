# gatehouse's whole decision in Rego, from the job as `gatehouse decide` reads it: label routing
# and repository naming included, as a Rego author would write it for OPA. benches/engines.rs
# measures it beside `gatehouse.rego` (which, like Cedar, is given the naming already done), so
# the comparison with `Policy::decide` is on the same request.
#
# data, the ledger (built by the bench with compile's reading of the repository):
#   org, suffix: lower-cased; labels["<routing key>"]: the set of resources that claim the key
#   (generic labels absent); projects["<project>"]["<resource>"]: {pull_request, forks,
#   expires?, users?} with `expires` in days since 1970-01-01 and `users` account ids;
#   runners["<resource>"]: {roles, require_tos, project_quota?, total_quota?}; tos: account ids.
#
# input: the JobContext's JSON (repository, labels, event, head_repository?, head_owner?,
#   actor, triggering_actor?, usage), with `today` in days since 1970-01-01.
#
# Bots, teams and run approvals are not translated (none is in the bench's mix).
package gatehouse

import rego.v1

# Every label's routing key: what precedes the first `--`, trimmed and lower-cased.
routes contains claimed if {
	some label in input.labels
	key := lower(trim_space(split(label, "--")[0]))
	some claimed in data.labels[key]
}

repository := lower(input.repository)

slash := indexof(repository, "/")

owner := substring(repository, 0, slash)

name := substring(repository, slash + 1, -1)

project := trim_suffix(name, data.suffix) if {
	owner == data.org
	endswith(name, data.suffix)
	name != data.suffix
}

resource := r if {
	count(routes) == 1
	some r in routes
}

grant := data.projects[project][resource]

runner := data.runners[resource]

triggering := object.get(input, "triggering_actor", input.actor)

decision := {"outcome": "not-managed"} if {
	count(routes) == 0
} else := {"outcome": "deny", "rule": "ambiguous-labels"} if {
	count(routes) > 1
} else := {"outcome": "deny", "rule": "no-grant"} if {
	not grant
} else := {"outcome": "deny", "rule": "expired"} if {
	grant.expires < input.today
} else := {"outcome": "deny", "rule": "event-not-allowed"} if {
	event_not_allowed
} else := {"outcome": "deny", "rule": "user-not-allowed"} if {
	user_not_allowed
} else := {"outcome": "deny", "rule": "quota-exhausted"} if {
	quota_exhausted
} else := {"outcome": "allow"}

pull_request_events := {"pull_request", "pull_request_review", "pull_request_review_comment"}

event := lower(input.event)

event_not_allowed if event == "pull_request_target"

event_not_allowed if {
	event in pull_request_events
	not grant.pull_request
}

# The code comes from another repository, or from a pull request's fork nobody can name.
from_fork if lower(input.head_repository) != repository

from_fork if {
	not input.head_repository
	event in pull_request_events
}

event_not_allowed if {
	from_fork
	not grant.forks
}

user_not_allowed if person_not_allowed(input.actor)

user_not_allowed if person_not_allowed(triggering)

# For a fork, its owner (whose code runs) too; a fork nobody can name is denied outright.
user_not_allowed if {
	from_fork
	not input.head_repository
}

user_not_allowed if {
	from_fork
	not input.head_owner
}

user_not_allowed if {
	from_fork
	input.head_repository
	person_not_allowed(input.head_owner)
}

person_not_allowed(person) if not person.permission in runner.roles

# (a guard, not `users := grant.users`: see gatehouse.rego)
person_not_allowed(person) if {
	grant.users
	not person.id in grant.users
}

person_not_allowed(person) if {
	runner.require_tos
	not person.id in data.tos
}

quota_exhausted if input.usage.project_minutes >= runner.project_quota

quota_exhausted if input.usage.resource_minutes >= runner.total_quota
