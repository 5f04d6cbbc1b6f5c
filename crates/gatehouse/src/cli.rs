//! The command line: every subcommand and its flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::report::Format;

/// Open, transparent access control for scarce CI resources.
///
/// gatehouse reads an access repository (YAML files of resources, grants, requests and people),
/// checks it, and keeps CI providers in line with it.
#[derive(Debug, Parser)]
#[command(
    name = "gatehouse",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Judge dates (expiry) as of this day instead of today, as YYYY-MM-DD.
    #[arg(
        long,
        global = true,
        value_name = "YYYY-MM-DD",
        env = "GATEHOUSE_TODAY"
    )]
    pub today: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate an access repository and report every problem at once.
    ///
    /// Exit status: 0 when there is no error (warnings allowed), 1 when there are findings,
    /// 2 when the repository could not be read or the command line is wrong.
    Check(CheckArgs),
    /// Build resources and grants from a provider's existing configuration.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Create a ready-to-use access repository.
    Init(InitArgs),
    /// Print the JSON Schema of a file kind, for editors that validate as you type.
    Schema(SchemaArgs),
    /// Decide whether one CI job may run on the resource its labels ask for.
    Decide(DecideArgs),
    /// Decide one CI job and show every rule it passed or failed.
    Explain(DecideArgs),
    /// Show what `apply` would do: ledger changes from merged requests and expiry, and the
    /// provider changes that follow. Read-only.
    Plan(PlanArgs),
    /// Consume merged requests into the ledger, commit, then make every provider match the
    /// ledger. Without --confirm it only shows the plan.
    Apply(ApplyArgs),
    /// Revoke grants past their expiry everywhere, and warn projects whose grants expire soon.
    Expire(ApplyArgs),
    /// Check every configured credential against its API and say which is missing or rejected.
    Doctor(DoctorArgs),
    /// A project's grants over time, read from the git history of its ledger file.
    History(HistoryArgs),
    /// Judge a pull request's approvals: set the commit status `gatehouse/approval` and post
    /// (or edit) one comment with the plan and an eligibility report.
    ///
    /// Exit status: 0 when approved, 1 when approvals are still missing, 2 on errors.
    Approvals(ApprovalsArgs),
    /// Write what a provider or another policy engine reads, from the ledger.
    #[command(subcommand)]
    Render(RenderCommand),
    /// Run the guard: receive GitHub's webhooks, decide every queued job that asks for a managed
    /// resource, cancel denied runs, count minutes.
    ///
    /// The webhook secret comes from GATEHOUSE_WEBHOOK_SECRET or --webhook-secret-file, the
    /// GitHub token from GITHUB_TOKEN, the admin token (for POST /admin/reload) from
    /// GATEHOUSE_ADMIN_TOKEN.
    Serve(ServeArgs),
    /// Decide the guard's stored queued jobs again against the access repository on disk and
    /// list the decisions that would change: for audits, and to try a policy change before it
    /// lands. Reads only; cancels and records nothing.
    ///
    /// Exit status: 0 when no decision would change, 1 when some would, 2 on errors.
    Replay(ReplayArgs),
    /// Why a run's managed jobs were allowed, denied or wait: the guard's decisions about it,
    /// with the rule and the reason, and the queue of the resources they asked for.
    ///
    /// Give the run's or the job's address as GitHub shows it
    /// (https://github.com/OWNER/NAME/actions/runs/RUN, or .../job/JOB).
    Why(WhyArgs),
    /// Admit or refuse the job about to run on this self-hosted runner, before its first step:
    /// run by the runner's job-started hook (ACTIONS_RUNNER_HOOK_JOB_STARTED).
    ///
    /// Asks the guard (POST /api/v1/admission) with the pool's token; when the guard cannot be
    /// reached in time, decides from the signed policy snapshot; when neither works, refuses
    /// (unless the pool says `on_unreachable: allow`). A refused job exits 1 with the reason on
    /// stderr and in the job's summary; an admitted one exits 0 without a word.
    Gate(GateArgs),
    /// Write a signed policy snapshot for runners' gates (the guard serves its own at
    /// GET /api/v1/snapshot): the compiled policy, and with --db the guard's role facts.
    Snapshot(SnapshotArgs),
    /// Audit the projects' own files and the guard's records: managed labels reachable from
    /// forks or held without a grant, labels given through expressions, idle and archived
    /// grants, provider drift.
    ///
    /// Exit status: 0 when there is no high-severity finding, 1 when there is, 2 when the
    /// access repository or the projects could not be read or the command line is wrong.
    Audit(AuditArgs),
    /// Files the access repository's CI needs, generated from the ledger.
    #[command(subcommand)]
    Ci(CiCommand),
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Generate a conda-forge-scale access repository for scale tests and benchmarks.
    #[command(hide = true)]
    GenFixture(GenFixtureArgs),
    /// Write the public ledger: static HTML pages and JSON (`v1/`), ready to publish as is.
    ///
    /// Every resource, every project with its grants and history (from git), and the pending
    /// requests. The same repository and day give byte-identical files.
    Site(SiteArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The access repository's top folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,

    /// How to print findings.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Also ask GitHub whether projects' repositories exist and are not archived, and whether
    /// ToS logins still belong to their ids. Reads the token from GITHUB_TOKEN.
    #[arg(long)]
    pub online: bool,

    /// With --online: fail when the online checks cannot run (no token), instead of warning.
    #[arg(long, requires = "online")]
    pub strict: bool,

    /// Print the name of every offline check, one a line, and exit.
    #[arg(long, exclusive = true)]
    pub list: bool,

    /// Leave out the offline check NAME (repeatable; `--list` names them).
    #[arg(
        long,
        value_name = "NAME",
        value_parser = clap::builder::PossibleValuesParser::new(
            gatehouse_core::check::CHECKS.iter().map(|(name, _)| *name)
        )
    )]
    pub skip: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The access repository's top folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// A folder of project checkouts, each in a folder named like its repository
    /// (`pytorch-cpu-feedstock`): their `.github/workflows/*.yml`, `conda-forge.yml` and
    /// `recipe/conda_build_config.yaml` are read.
    #[arg(long, value_name = "DIR")]
    pub projects: Option<PathBuf>,
    /// Also ask GitHub which projects are archived, whether ToS logins still belong to their
    /// ids, what each provider grants (drift) and which runner groups admit public repositories.
    /// Reads GITHUB_TOKEN (and CIRUN_API_KEY for Cirun's drift).
    #[arg(long)]
    pub online: bool,
    /// The guard's database (`sqlite://FILE` or `postgres://...`), read only: grants with no
    /// allowed job in the last --idle-days days are proposed for revocation.
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// With --db: how many days without a job make a grant idle.
    #[arg(long, default_value_t = 90, value_name = "DAYS")]
    pub idle_days: u32,
    #[arg(long, value_enum, default_value_t = AuditFormat::Human)]
    pub format: AuditFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Human,
    /// GitHub Actions workflow annotations.
    Github,
    Json,
    /// SARIF 2.1.0, for GitHub code scanning (`github/codeql-action/upload-sarif`).
    Sarif,
}

#[derive(Debug, Subcommand)]
pub enum CiCommand {
    /// Write `.github/CODEOWNERS` from the reviewers of gatehouse.yml and of each resource, so
    /// that GitHub asks the right people to review each change.
    Codeowners(CodeownersArgs),
}

#[derive(Debug, Args)]
pub struct CodeownersArgs {
    /// The access repository's top folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Write nothing; exit 1 when `.github/CODEOWNERS` differs from what would be written.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import Cirun's `.access.yml` and `.cirun.global.yml`.
    Cirun(ImportCirunArgs),
    /// Import the repositories a GitHub App installation holds as grants of its provider's
    /// resource (needs GATEHOUSE_ADMIN_TOKEN, an organisation owner's user token).
    GithubApp(ImportGithubAppArgs),
    /// Report which feedstocks use managed labels (workflows' `runs-on`,
    /// `github_actions_labels`) without a grant: who would lose access on migration.
    Labels(ImportLabelsArgs),
}

#[derive(Debug, Args)]
pub struct ImportLabelsArgs {
    /// The folder that holds the project checkouts.
    #[arg(long, value_name = "PATH")]
    pub projects: PathBuf,
    /// The access repository.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImportGithubAppArgs {
    /// The `github-app` provider of gatehouse.yml whose installation is read.
    #[arg(long)]
    pub provider: String,
    /// The resource to grant, when the provider serves several.
    #[arg(long)]
    pub resource: Option<String>,
    /// The date recorded as `granted` on imported grants (default: today).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub granted: Option<String>,
    /// The access repository.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImportCirunArgs {
    /// Cirun's access policy (`.access.yml`).
    #[arg(long, value_name = "FILE")]
    pub access: PathBuf,
    /// Cirun's runner catalogue (`.cirun.global.yml`).
    #[arg(long, value_name = "FILE")]
    pub runners: PathBuf,
    /// The access repository to write `resources/` and `grants/` into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The provider name the imported resources use (defined in gatehouse.yml).
    #[arg(long, default_value = "cirun")]
    pub provider: String,
    /// Removed from repository names to get project names.
    #[arg(long, default_value = "-feedstock")]
    pub repo_suffix: String,
    /// The organisation, for the gatehouse.yml written when DIR has none.
    #[arg(long, default_value = "conda-forge")]
    pub org: String,
    /// The date recorded as `granted` on imported grants (default: today).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub granted: Option<String>,
    /// A copy of the users list the policies' `users_from_json` points to (`{"users":
    /// [{"github": LOGIN, "id": N}]}`), written into people/tos.yml.
    #[arg(long, value_name = "FILE", conflicts_with = "online")]
    pub users_json: Option<PathBuf>,
    /// Read the users list from the URL the policies' `users_from_json` names.
    #[arg(long)]
    pub online: bool,
    /// Overwrite files that already exist.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to create the access repository.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Start from a full example instead of a minimal skeleton.
    #[arg(long, value_enum)]
    pub example: Option<Example>,
    /// The organisation (for the minimal skeleton).
    #[arg(long, default_value = "my-org")]
    pub org: String,
    /// Overwrite files that already exist.
    #[arg(long)]
    pub force: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Example {
    /// conda-forge's real resource catalogue, with example grants and requests.
    CondaForge,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// The file kind; all of them when left out.
    #[arg(value_enum)]
    pub kind: Option<SchemaKind>,
    /// Write `<kind>.schema.json` files into this folder instead of printing.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// gatehouse.yml
    Settings,
    /// resources/<name>.yml
    Resource,
    /// grants/<project>.yml
    Grant,
    /// requests/<any>.yml
    Request,
    /// people/tos.yml
    Tos,
    /// pools/<name>.yml
    Pool,
}

#[derive(Debug, Args)]
pub struct GenFixtureArgs {
    /// Folder to write the repository into (must be empty or missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Multiplies every count (1 = 25,000 projects' worth, 2,000 grants, 500 requests).
    #[arg(long, default_value_t = 1)]
    pub scale: usize,
}

#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The job context as JSON (`-` for standard input); see `gatehouse decide --help`.
    ///
    /// {"repository": "conda-forge/pytorch-cpu-feedstock", "labels": ["cirun-openstack-gpu-large"],
    /// "event": "push", "head_repository": "conda-forge/pytorch-cpu-feedstock",
    /// "actor": {"login": "wolfv", "id": 885054, "permission": "write"},
    /// "triggering_actor": {...}, "workflow": "...", "ref": "...",
    /// "usage": {"project_minutes": 0, "resource_minutes": 0},
    /// "teams": {"core": [885054]}}  (the members of the teams the grant names, if any)
    #[arg(long, value_name = "FILE")]
    pub job: PathBuf,
    /// The access repository's top folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    #[arg(long, value_enum, default_value_t = DecisionFormat::Text)]
    pub format: DecisionFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DecisionFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum RenderCommand {
    /// Cirun's `.access.yml`.
    Cirun(RenderCirunArgs),
    /// The same policy as Cedar: `policies.cedar`, `entities.json` and `schema.cedarschema`.
    Cedar(RenderCedarArgs),
}

#[derive(Debug, Args)]
pub struct RenderCedarArgs {
    /// The access repository's top folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The folder to write the three files into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct RenderCirunArgs {
    /// The access repository's top folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The cirun provider to render, when gatehouse.yml defines several.
    #[arg(long)]
    pub provider: Option<String>,
    /// Write to this file (atomically) instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The access repository's top folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Also read each Cirun provider's app installation (GATEHOUSE_ADMIN_TOKEN, an
    /// organisation owner's token) and list where `apply` switches Cirun on or off, and each
    /// capped runner group's GitHub-hosted runners (GITHUB_TOKEN) and list the
    /// `maximum_runners` `apply` sets.
    #[arg(long)]
    pub online: bool,
    /// With --online: plan as `apply --deactivate-ungranted` does (Cirun switched off where
    /// it is installed without a grant).
    #[arg(long, requires = "online")]
    pub deactivate_ungranted: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    /// For a pull request comment.
    Markdown,
    Json,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The project (its name in grants/, without the repository suffix).
    pub project: String,
    /// The access repository's top folder (a git checkout).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// The guard's database (sqlite://FILE or postgres://...), read-only: adds the run
    /// approvals (`/gatehouse run <sha>`) recorded on the project's repository, and the jobs
    /// that ran under each.
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The access repository's top folder (a git checkout of main).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Make the changes; without it, only print the plan.
    #[arg(long)]
    pub confirm: bool,
    /// Allow one run to revoke more than --max-revoke-share of the active grants.
    #[arg(long)]
    pub allow_mass_revoke: bool,
    /// The share of active grants one run may revoke without --allow-mass-revoke.
    #[arg(long, default_value_t = 0.10, value_name = "SHARE")]
    pub max_revoke_share: f64,
    /// Switch Cirun off (cirun-py's `set_repo` inactive, then out of Cirun's app installation)
    /// at every repository of a Cirun provider's `installation_id` that holds no grant of its
    /// resources; without it they are only reported. The same share limit applies.
    #[arg(long)]
    pub deactivate_ungranted: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The access repository's top folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ApprovalsArgs {
    /// The pull request's number.
    #[arg(long, value_name = "N", required_unless_present = "for_head")]
    pub pr: Option<u64>,
    /// Judge the open pull request whose head is this commit (for a `workflow_run` started by
    /// a review of a fork's pull request, which carries no pull request number).
    #[arg(long, value_name = "SHA", conflicts_with = "pr")]
    pub for_head: Option<String>,
    /// A checkout of the pull request's head, read as data only: its request files say which
    /// resources the pull request touches.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// A checkout of the base branch: gatehouse.yml, resources/ and grants/ (who reviews, and
    /// who holds what) are read from it, so a pull request cannot name its own reviewers.
    /// Without it they are read from DIR.
    #[arg(long, value_name = "DIR")]
    pub base: Option<PathBuf>,
    /// The access repository, OWNER/NAME (default: GITHUB_REPOSITORY).
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: Option<String>,
    /// The commit DIR holds; when the pull request's head has moved on, nothing is judged.
    #[arg(long, value_name = "SHA")]
    pub head_sha: Option<String>,
    /// Read the files the pull request changes through GitHub's API (as data, at its head
    /// commit) over the --base checkout, instead of from DIR: for a workflow on
    /// `pull_request_target`, which must never check out the pull request's code.
    #[arg(long)]
    pub files_from_api: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The access repository's top folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Storage: `sqlite://FILE` (created and migrated on start) or `postgres://...` for several
    /// replicas behind a load balancer.
    #[arg(long, default_value = "sqlite://gatehouse.db", env = "GATEHOUSE_DB")]
    pub db: String,
    /// A file holding the webhook secret (instead of GATEHOUSE_WEBHOOK_SECRET).
    #[arg(long, value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Only record what would be denied; cancel nothing (overrides gatehouse.yml's guard mode).
    #[arg(long)]
    pub dry_run: bool,
    /// Stop (as on SIGTERM: requests in flight are finished) after this long, e.g. `30s`,
    /// `5m`; for bounded runs such as a CI smoke job.
    #[arg(long, value_name = "DURATION")]
    pub exit_after: Option<String>,
    /// The id of the organisation webhook that sends the guard its deliveries: at start and
    /// every --catch-up-every, the guard asks GitHub to send again the deliveries of the last
    /// three days it does not hold (GitHub does not retry failed deliveries by itself). The
    /// token needs the organisation's webhooks permission (admin:org_hook).
    #[arg(long, value_name = "ID", env = "GATEHOUSE_CATCH_UP_HOOK")]
    pub catch_up_hook: Option<u64>,
    /// How often to catch up on missed deliveries, e.g. `5m`.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5m",
        requires = "catch_up_hook"
    )]
    pub catch_up_every: String,
    /// How long a repository's roles (its whole collaborator list, read ahead of any job) are
    /// decided on before they are read again; webhooks about members, teams and repositories
    /// make them stale sooner.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub facts_ttl: String,
    /// How long a job waits for a fact the guard does not hold (its run, the roles) before it
    /// is denied `facts-unavailable` (and its run cancelled).
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub facts_deadline: String,
    /// Answer runners' gates (POST /api/v1/admission): a folder with one file per runner pool
    /// of gatehouse.yml, named like the pool, holding its token.
    #[arg(long, value_name = "DIR")]
    pub gate_tokens: Option<std::path::PathBuf>,
    /// Sign policy snapshots for runners (GET /api/v1/snapshot) with this key (`gatehouse gate
    /// keygen` makes one); needs --gate-tokens.
    #[arg(long, value_name = "FILE", requires = "gate_tokens")]
    pub gate_key: Option<std::path::PathBuf>,
    /// How long runners may decide from a snapshot, e.g. `24h`.
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub snapshot_max_age: String,
}

/// Everything the gate uses comes from its flags, never from environment variables of its
/// own: the hook runs in the job's environment, which a workflow must not be able to point at
/// another guard, key or snapshot.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GateArgs {
    #[command(subcommand)]
    pub command: Option<GateCommand>,
    /// The runner pool (gatehouse.yml `gate.pools`) this runner belongs to.
    #[arg(long, group = "serves")]
    pub pool: Option<String>,
    /// Instead of --pool: the resource this runner serves (its pool's settings are those of
    /// the pools that serve it).
    #[arg(long, group = "serves", value_name = "NAME")]
    pub resource: Option<String>,
    /// Instead of --pool: the labels the runner was given when it was provisioned
    /// (comma-separated, or repeated), routed to the one resource they select as the guard
    /// routes a job's labels. Labels that select no resource, or two, refuse every job.
    #[arg(long, group = "serves", value_name = "LABELS", value_delimiter = ',', num_args = 1..)]
    pub labels: Option<Vec<String>>,
    /// The guard's base URL, e.g. https://gatehouse.example.org.
    #[arg(long, value_name = "URL")]
    pub guard: Option<String>,
    /// The file holding the pool's admission token.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// The signed policy snapshot to decide from when the guard cannot be reached.
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<std::path::PathBuf>,
    /// A public key snapshots may be signed with (give two while the key is changed).
    #[arg(long = "public-key", value_name = "FILE")]
    pub public_keys: Vec<std::path::PathBuf>,
    /// Where the newest snapshot serial seen is kept (an older snapshot is then refused).
    #[arg(long, value_name = "FILE")]
    pub state: Option<std::path::PathBuf>,
    /// How long to wait for the guard before deciding from the snapshot, e.g. `2s`.
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    pub timeout: String,
    /// How long a job waiting for a concurrency slot keeps asking a guard that stopped
    /// answering before it is refused (the snapshot cannot count running jobs, so it never
    /// decides for a waiting job), e.g. `60s`.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub unreachable_wait: String,
    /// Say in one line what was decided, also when the job is admitted.
    #[arg(long)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum GateCommand {
    /// Make a key pair that signs snapshots: DIR/gate-signing.key (secret, for the guard's
    /// --gate-key) and DIR/gate-signing.pub (for the runners' --public-key).
    Keygen {
        #[arg(long, value_name = "DIR")]
        out: std::path::PathBuf,
    },
    /// Fetch the guard's current snapshot (GET /api/v1/snapshot) and replace FILE with it once
    /// it verifies; unchanged snapshots are not downloaded again.
    Fetch {
        #[arg(long, value_name = "URL")]
        guard: String,
        #[arg(long, value_name = "FILE")]
        token_file: std::path::PathBuf,
        #[arg(long, value_name = "FILE")]
        out: std::path::PathBuf,
        /// The keys the snapshot may be signed with (`--public-key A B` or repeated).
        #[arg(long = "public-key", value_name = "FILE", required = true, num_args = 1..)]
        public_keys: Vec<std::path::PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The access repository's top folder.
    #[arg(default_value = ".")]
    pub dir: std::path::PathBuf,
    /// Where to write the snapshot.
    #[arg(long, value_name = "FILE")]
    pub out: std::path::PathBuf,
    /// The signing key (as `gatehouse gate keygen` writes it).
    #[arg(long, value_name = "FILE")]
    pub key: std::path::PathBuf,
    /// The guard's store, for the role facts of the granted projects (without it, the
    /// snapshot holds none and every job that needs a role is refused offline).
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// How long runners may decide from it, e.g. `24h`.
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub max_age: String,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The access repository whose policy the jobs are decided against.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Replay deliveries received at or after this moment: `YYYY-MM-DD` (midnight UTC) or an
    /// RFC 3339 time such as `2026-11-29T10:00:00Z`.
    #[arg(long, value_name = "DATE/TIME")]
    pub since: String,
    /// The guard's store, as given to `serve`.
    #[arg(long, default_value = "sqlite://gatehouse.db", env = "GATEHOUSE_DB")]
    pub db: String,
    #[arg(long, value_enum, default_value_t = DecisionFormat::Text)]
    pub format: DecisionFormat,
}

#[derive(Debug, Args)]
pub struct WhyArgs {
    /// The run's or the job's address on GitHub.
    pub url: String,
    /// The guard's address (`gatehouse serve`), as its public pages are reached.
    #[arg(long, env = "GATEHOUSE_GUARD_URL", value_name = "URL")]
    pub guard: String,
    #[arg(long, value_enum, default_value_t = DecisionFormat::Text)]
    pub format: DecisionFormat,
}

#[derive(Debug, Args)]
pub struct SiteArgs {
    /// The access repository's top folder (a git checkout gives each project its history).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The folder to write the site into: new, empty, or a site gatehouse wrote before (which
    /// is replaced whole).
    #[arg(long, value_name = "DIR", default_value = "public")]
    pub out: PathBuf,
    /// Do not read the grant history and request pull requests from git.
    #[arg(long)]
    pub no_history: bool,
    /// The access repository on GitHub (https://github.com/OWNER/NAME), for links to the pull
    /// requests of pending requests; read from the `origin` remote when left out.
    #[arg(long, value_name = "URL")]
    pub repo_url: Option<String>,
    /// Usage to show (minutes per resource and week), as JSON from `gatehouse serve`'s
    /// `/dashboard.json`.
    #[arg(long, value_name = "FILE", conflicts_with = "db")]
    pub usage: Option<PathBuf>,
    /// The guard's database (sqlite://FILE or postgres://...), read once: adds this month's
    /// usage (a column and a chart per resource, as --usage does) and a page per sponsor pool
    /// with its spending and burn-down chart (`pools.html`, `pools/NAME.html`,
    /// `v1/pools.json`).
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
}
