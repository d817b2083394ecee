; Inno Setup 6 script for the Windows installer of ccdm-gui.
;
; NOT run by this project's tests (there is no Windows machine here); it is built on
; a windows runner by .github/workflows/packages.yml. Input: the PyInstaller bundle
; dist\ccdm-gui\ made by `bash packaging/build.sh` (Git Bash), which also calls:
;   iscc /DAppVersion=0.1.0 /DIconFile=build\pkg\ccdm-gui.ico packaging\windows\ccdm-gui.iss
; Output: dist\ccdm-gui-VERSION-windows-x64-setup.exe
;
; Installs for one user without administrator rights by default (the user may
; choose all users), adds the bundle folder to PATH so that `ccdm` works in a new
; terminal, and puts ccdm-gui in the Start menu.

#ifndef AppVersion
  #error Pass the version: iscc /DAppVersion=X.Y.Z ccdm-gui.iss
#endif

[Setup]
AppId={{6E0C4A51-2B8F-4C7A-9D43-CCD0A1E5F1B7}
AppName=ccdm-gui
AppVersion={#AppVersion}
AppVerName=ccdm-gui {#AppVersion}
AppPublisher=ccdm-gui developers
DefaultDirName={autopf}\ccdm-gui
DefaultGroupName=ccdm-gui
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
ChangesEnvironment=yes
OutputDir=..\..\dist
OutputBaseFilename=ccdm-gui-{#AppVersion}-windows-x64-setup
; The bundle is ~1 GB, most of it torch's DLLs: solid LZMA2 roughly halves it.
Compression=lzma2/max
SolidCompression=yes
LZMANumBlockThreads=4
#ifdef IconFile
SetupIconFile={#IconFile}
#endif
UninstallDisplayIcon={app}\ccdm-gui.exe
WizardStyle=modern

[Tasks]
Name: "addtopath"; Description: "Add the ccdm command to PATH"; GroupDescription: "Command line:"
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "..\..\dist\ccdm-gui\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\ccdm-gui"; Filename: "{app}\ccdm-gui.exe"
Name: "{autodesktop}\ccdm-gui"; Filename: "{app}\ccdm-gui.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\ccdm-gui.exe"; Description: "{cm:LaunchProgram,ccdm-gui}"; Flags: nowait postinstall skipifsilent

[Code]
// PATH lives under HKCU for a per-user install and HKLM for an all-users one.
function EnvRoot: Integer;
begin
  if IsAdminInstallMode then Result := HKEY_LOCAL_MACHINE else Result := HKEY_CURRENT_USER;
end;

function EnvKey: String;
begin
  if IsAdminInstallMode then
    Result := 'SYSTEM\CurrentControlSet\Control\Session Manager\Environment'
  else
    Result := 'Environment';
end;

function PathWithout(Path, Dir: String): String;
var
  P: Integer;
begin
  Result := ';' + Path + ';';
  P := Pos(';' + Uppercase(Dir) + ';', Uppercase(Result));
  if P > 0 then Delete(Result, P, Length(Dir) + 1);
  Result := Copy(Result, 2, Length(Result) - 2);
end;

procedure CurStepChanged(CurStep: TSetupStep);
var
  Path: String;
begin
  if (CurStep = ssPostInstall) and WizardIsTaskSelected('addtopath') then
  begin
    if not RegQueryStringValue(EnvRoot, EnvKey, 'Path', Path) then Path := '';
    Path := PathWithout(Path, ExpandConstant('{app}'));
    if Path <> '' then Path := Path + ';';
    RegWriteExpandStringValue(EnvRoot, EnvKey, 'Path', Path + ExpandConstant('{app}'));
  end;
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  Path: String;
begin
  if (CurUninstallStep = usPostUninstall) and RegQueryStringValue(EnvRoot, EnvKey, 'Path', Path) then
    RegWriteExpandStringValue(EnvRoot, EnvKey, 'Path', PathWithout(Path, ExpandConstant('{app}')));
end;
