# gatehouse's decision rules in Rego, for benches/engines.rs: the rules of DESIGN.md section 5 in
# their order, as `Policy::decide` implements them and `render cedar` states them for Cedar.
#
# data, the ledger (built by the bench from the repository, with compile's reading of it):
#   grants["<project>/<resource>"]: {runner, pull_request, forks, expires?, users?}
#     project lower-cased, `%` and `/` escaped as in Cedar's grant ids; `expires` is the last
#     day, in days since 1970-01-01; `users` the set of account ids, when the grant
#     narrows who may trigger jobs. Expired grants are present: `expired` is not `no-grant`.
#   runners["<resource>"]: {roles (a set), require_tos, project_quota?, total_quota?}
#   tos: the set of numeric account ids of everyone who accepted the terms of service.
#
# input, the facts of the Cedar request's context:
#   grant (the grant key the job asks for, present in data or not), today (days since
#   1970-01-01), event (lower-cased), from_fork (a pull request without a head repository
#   too), actor, triggering and, for a fork that names one, head_owner ({login lower-cased,
#   permission ("none" when none), id}), usage ({project_minutes, resource_minutes}).
#
# Bots, teams and run approvals are not translated: the fixture has no bots, no grant of the
# mix names a team, and no job of the mix carries a run approval.
#
# Routing labels to a resource and repositories to projects is naming, done before, as for
# Cedar. `decision` is {"outcome": "allow"} or {"outcome": "deny", "rule": <gatehouse code>}.
package gatehouse

import rego.v1

grant := data.grants[input.grant]

runner := data.runners[grant.runner]

# The first rule that denies, in gatehouse's order, or allow.
decision := {"outcome": "deny", "rule": "no-grant"} if {
	not runner
} else := {"outcome": "deny", "rule": "expired"} if {
	grant.expires < input.today
} else := {"outcome": "deny", "rule": "event-not-allowed"} if {
	event_not_allowed
} else := {"outcome": "deny", "rule": "user-not-allowed"} if {
	user_not_allowed
} else := {"outcome": "deny", "rule": "quota-exhausted"} if {
	quota_exhausted
} else := {"outcome": "allow"}

# Events that build a pull request's code; a grant's `pull_request` covers all of them.
pull_request_events := {"pull_request", "pull_request_review", "pull_request_review_comment"}

event_not_allowed if input.event == "pull_request_target"

event_not_allowed if {
	input.event in pull_request_events
	not grant.pull_request
}

event_not_allowed if {
	input.from_fork
	not grant.forks
}

user_not_allowed if person_not_allowed(input.actor)

user_not_allowed if person_not_allowed(input.triggering)

# For a fork, its owner (whose code runs) too; a fork nobody can name (a pull request without
# a head repository, or a fork without a known owner) is denied outright.
user_not_allowed if {
	input.from_fork
	not input.head_owner
}

user_not_allowed if {
	input.from_fork
	person_not_allowed(input.head_owner)
}

# A role that may not use the resource,
person_not_allowed(person) if not person.permission in runner.roles

# or not in the grant's list of users (a guard, not `users := grant.users`: regorus 0.14.1's
# RVM does not fail a body on an assignment of an undefined value, so that form denied everyone
# on grants without a list; the interpreter, like OPA, got it right),
person_not_allowed(person) if {
	grant.users
	not person.id in grant.users
}

# or the terms of service not accepted (by account id).
person_not_allowed(person) if {
	runner.require_tos
	not person.id in data.tos
}

quota_exhausted if input.usage.project_minutes >= runner.project_quota

quota_exhausted if input.usage.resource_minutes >= runner.total_quota
