<#
.SYNOPSIS
    Roll a new build of one tend service across Windows hosts without Ansible, one host at
    a time, and stop at the first host where it did not work (docs/upgrade.md, "Fleets").

.DESCRIPTION
    For each host in order: copy the build to the host over the admin share, run
    `tend upgrade <Service> <build> --json` there with PowerShell remoting, and read its
    result. tend stops the service, swaps the build in, starts and verifies it, and puts
    the old build back on that host if the new one fails (exit 6; 7 if even the old one did
    not come back). The loop stops at the first host that did not end on the new build, so
    the hosts after it keep the old one.

.EXAMPLE
    .\Invoke-TendUpgrade.ps1 -ComputerName web01,web02,web03 -Service api -Build .\build\api.exe
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string[]] $ComputerName,
    [Parameter(Mandatory)] [string] $Service,
    [Parameter(Mandatory)] [string] $Build,
    # Where the build is copied on each host before the upgrade; tend copies it into its
    # own release store.
    [string] $StageDir = 'C:\ProgramData\tend\incoming',
    [string] $Tend = 'tend.exe'
)
$ErrorActionPreference = 'Stop'
$file = Split-Path -Leaf $Build

foreach ($computer in $ComputerName) {
    $share = "\\$computer\" + ($StageDir -replace '^([A-Za-z]):', '$1$')
    New-Item -ItemType Directory -Force -Path $share | Out-Null
    Copy-Item -Force -Path $Build -Destination (Join-Path $share $file)

    $r = Invoke-Command -ComputerName $computer -ArgumentList $Tend, $Service, (Join-Path $StageDir $file) -ScriptBlock {
        param($tend, $service, $staged)
        $out = & $tend upgrade $service $staged --json 2>&1
        [pscustomobject]@{
            Code   = $LASTEXITCODE
            Stdout = ($out | Where-Object { $_ -isnot [System.Management.Automation.ErrorRecord] }) -join "`n"
            Stderr = ($out | Where-Object { $_ -is [System.Management.Automation.ErrorRecord] }) -join "`n"
        }
    }
    if ($r.Code -ne 0) {
        Write-Error ("{0}: tend upgrade exited {1} (6: rolled back, the old build serves again; 7: broken, see tend status). Hosts after it were not touched.`n{2}" -f $computer, $r.Code, $r.Stderr)
        exit $r.Code
    }
    $end = ($r.Stdout | ConvertFrom-Json).end
    Write-Host ("{0}: {1}" -f $computer, $end)
}
