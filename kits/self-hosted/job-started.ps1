# gatehouse: admit or refuse a job on this Windows runner before its first step.
#
# The PowerShell twin of job-started.sh, for runners on Windows. GitHub's self-hosted runner
# runs this script before every job when the runner's environment holds
# ACTIONS_RUNNER_HOOK_JOB_STARTED=<this file's absolute path>; the file must end in .ps1, and the
# runner starts it with pwsh (falling back to powershell) as `-command ". '<file>'"`. Exit 0 lets
# the job run, any other exit fails it before its first step, and what is printed shows in the
# job's log under "Set up runner" ("Running scripts before or after a job", docs.github.com/
# actions/hosting-your-own-runners).
#
# UNTESTED ON WINDOWS: PowerShell cannot be installed where gatehouse is built and tested, so this
# script has never been run. The tests check only that it reads the same gate.conf keys, passes
# the same flags and hands gatehouse the same variables as job-started.sh. Try it on one runner
# (a job that should be refused, and one that should run) before rolling it out.
#
# It reads its settings from gate.conf beside it, never from the job's environment, and hands
# gatehouse nothing but the variables GitHub sets for every job. Install it, gate.conf, the
# binary and the public key where the runner's account can read but not change them.

$ErrorActionPreference = 'Stop'
$here = $PSScriptRoot
$conf = Join-Path $here 'gate.conf'
if (-not (Test-Path -LiteralPath $conf -PathType Leaf)) {
    [Console]::Error.WriteLine("gatehouse: $conf cannot be read, so this runner's gate is not set up and no job may run on it. Ask the organisation's runner admins.")
    exit 1
}

# gate.conf: KEY=value lines; `#` starts a comment. Read, never run.
$cfg = @{}
foreach ($line in [System.IO.File]::ReadAllLines($conf)) {
    $line = ($line -split '#', 2)[0]
    if ($line -match '^\s*([A-Z_]+)\s*=\s*(.*?)\s*$') {
        $cfg[$Matches[1]] = $Matches[2]
    }
}
function Get-Conf([string]$Key, [string]$Default = '') {
    if ($cfg.ContainsKey($Key) -and $cfg[$Key] -ne '') { return $cfg[$Key] }
    return $Default
}

$bin = Get-Conf 'GATEHOUSE_BIN' (Join-Path $here 'bin\gatehouse.exe')
$gate = [System.Collections.Generic.List[string]]::new()
$gate.Add('gate')
# What the runner serves: its pool, else its resource, else the labels it was provisioned with.
if (Get-Conf 'POOL') {
    $gate.Add('--pool'); $gate.Add((Get-Conf 'POOL'))
} elseif (Get-Conf 'RESOURCE') {
    $gate.Add('--resource'); $gate.Add((Get-Conf 'RESOURCE'))
} elseif (Get-Conf 'LABELS') {
    $gate.Add('--labels'); $gate.Add((Get-Conf 'LABELS'))
}
if (Get-Conf 'GUARD') {
    $gate.Add('--guard'); $gate.Add((Get-Conf 'GUARD'))
    $gate.Add('--token-file'); $gate.Add((Get-Conf 'TOKEN_FILE' (Join-Path $here 'pool.token')))
}
$gate.Add('--snapshot'); $gate.Add((Get-Conf 'SNAPSHOT' (Join-Path $env:ProgramData 'gatehouse\snapshot.bin')))
foreach ($key in ((Get-Conf 'PUBLIC_KEYS' (Join-Path $here 'gate-signing.pub')) -split '\s+')) {
    if ($key) { $gate.Add('--public-key'); $gate.Add($key) }
}
if (Get-Conf 'STATE') {
    $gate.Add('--state'); $gate.Add((Get-Conf 'STATE'))
}
if (Get-Conf 'TIMEOUT') {
    $gate.Add('--timeout'); $gate.Add((Get-Conf 'TIMEOUT'))
}
if (Get-Conf 'UNREACHABLE_WAIT') {
    $gate.Add('--unreachable-wait'); $gate.Add((Get-Conf 'UNREACHABLE_WAIT'))
}
if ((Get-Conf 'VERBOSE' 'no') -eq 'yes') {
    $gate.Add('--verbose')
}

$start = [System.Diagnostics.ProcessStartInfo]::new($bin)
$start.UseShellExecute = $false
# pwsh (.NET) takes the arguments one by one; Windows PowerShell 5.1 (.NET Framework) only as one
# command line, quoted the way Windows programs split it.
if ($start.PSObject.Properties.Name -contains 'ArgumentList') {
    foreach ($a in $gate) { $start.ArgumentList.Add($a) }
} else {
    $start.Arguments = ($gate | ForEach-Object {
        if ($_ -notmatch '[\s"]') { $_ } else { '"' + ($_ -replace '(\\*)"', '$1$1\"' -replace '(\\+)$', '$1$1') + '"' }
    }) -join ' '
}

# Only what GitHub sets for the job: nothing else of the environment reaches gatehouse. Windows
# programs need SystemRoot to start their network stack; it is taken from the system, not from
# the job's environment.
$environment = if ($start.PSObject.Properties.Name -contains 'Environment') { $start.Environment } else { $start.EnvironmentVariables }
$environment.Clear()
$environment['SystemRoot'] = [Environment]::GetFolderPath('Windows')
foreach ($name in @('GITHUB_REPOSITORY', 'GITHUB_EVENT_NAME', 'GITHUB_EVENT_PATH', 'GITHUB_ACTOR',
        'GITHUB_ACTOR_ID', 'GITHUB_TRIGGERING_ACTOR', 'GITHUB_RUN_ID', 'GITHUB_RUN_ATTEMPT',
        'GITHUB_JOB', 'GITHUB_WORKFLOW_REF', 'GITHUB_REF', 'GITHUB_STEP_SUMMARY', 'RUNNER_NAME')) {
    $value = [Environment]::GetEnvironmentVariable($name)
    if ($null -ne $value) { $environment[$name] = $value }
}

$process = [System.Diagnostics.Process]::Start($start)
$process.WaitForExit()
exit $process.ExitCode
