/**
 * Typed instructions: one type per Dockerfile instruction, flags parsed into fields.
 * Words are kept as written (unexpanded); `expandInstruction` (scope.ts) expands them where
 * BuildKit does, with the environment the builder has at that step.
 */
import type { Heredoc, InstructionNode } from './ast.js';
import type { SourceLocation } from './errors.js';
import type { RunMount } from './mounts.js';

interface Base {
  location: SourceLocation;
  /** The instruction's logical line, as written (continuations joined). */
  original: string;
  /** The keyword as written (`RUN`, `run`), for casing checks. */
  keyword: string;
  node: InstructionNode;
}

/** Exec form (`["a","b"]`, run as is) or shell form (one string, run through SHELL). */
export interface CommandLine {
  form: 'exec' | 'shell';
  /** exec: argv; shell: one element, the command text (keeps `$` for the shell). */
  args: string[];
}

export interface FromInstruction extends Base {
  kind: 'FROM';
  /** Base image or stage name as written; expanded with global ARGs by buildPlan. */
  image: string;
  /** `AS name`, lowercased. */
  stageName?: string | undefined;
  /** `--platform` as written. */
  platform?: string | undefined;
}

export interface RunInstruction extends Base, CommandLine {
  kind: 'RUN';
  /** Mounts as parsed at plan time; values containing `$` are expanded per step (scope.ts). */
  mounts: RunMount[];
  /** The raw `--mount` values, for re-parsing with expansion. */
  mountSpecs: string[];
  network: 'default' | 'none' | 'host';
  security: 'sandbox' | 'insecure';
  heredocs: Heredoc[];
}

export interface CmdInstruction extends Base, CommandLine {
  kind: 'CMD';
}

export interface EntrypointInstruction extends Base, CommandLine {
  kind: 'ENTRYPOINT';
}

export interface ShellInstruction extends Base {
  kind: 'SHELL';
  shell: string[];
}

export interface KeyValue {
  key: string;
  value: string;
}

export interface EnvInstruction extends Base {
  kind: 'ENV';
  pairs: KeyValue[];
  /** Legacy `ENV key value` form (no `=`). */
  legacy: boolean;
}

export interface LabelInstruction extends Base {
  kind: 'LABEL';
  pairs: KeyValue[];
  legacy: boolean;
}

export interface MaintainerInstruction extends Base {
  kind: 'MAINTAINER';
  maintainer: string;
}

export interface ArgDefinition {
  key: string;
  /** Default as written; undefined for `ARG name`. */
  value?: string | undefined;
}

export interface ArgInstruction extends Base {
  kind: 'ARG';
  args: ArgDefinition[];
}

/** A `COPY <<EOF /dst` source: an inline file. */
export interface InlineSource {
  /** The heredoc delimiter, used as the file name. */
  path: string;
  data: string;
  /** Expand `$VAR` in data (unquoted delimiter). */
  expand: boolean;
}

interface CopyLike extends Base {
  /** Source paths (or URLs/git refs for ADD), as written. */
  sources: string[];
  inlineSources: InlineSource[];
  dest: string;
  chown?: string | undefined;
  /** Octal (`0755`) or symbolic (`u+x,g-w`). */
  chmod?: string | undefined;
  link: boolean;
  excludes: string[];
  /** The arguments came as a JSON array. */
  json: boolean;
}

export interface CopyInstruction extends CopyLike {
  kind: 'COPY';
  /** `--from=<stage name | stage index | image>`; resolved into `PlanStage.copyFrom` by buildPlan. */
  from?: string | undefined;
  parents: boolean;
}

export interface AddInstruction extends CopyLike {
  kind: 'ADD';
  /** `--checksum=sha256:...` for a remote source. */
  checksum?: string | undefined;
  keepGitDir?: boolean | undefined;
  unpack?: boolean | undefined;
}

export interface ExposeInstruction extends Base {
  kind: 'EXPOSE';
  /** `80`, `53/udp`, `8000-8010/tcp`, as written. */
  ports: string[];
}

export interface VolumeInstruction extends Base {
  kind: 'VOLUME';
  paths: string[];
}

export interface UserInstruction extends Base {
  kind: 'USER';
  user: string;
}

export interface WorkdirInstruction extends Base {
  kind: 'WORKDIR';
  path: string;
}

export interface StopSignalInstruction extends Base {
  kind: 'STOPSIGNAL';
  signal: string;
}

/** Image-config healthcheck; durations in nanoseconds (0 = inherit the default). */
export interface HealthcheckInstruction extends Base {
  kind: 'HEALTHCHECK';
  /** `["NONE"]`, `["CMD", argv...]` or `["CMD-SHELL", "command"]`, as in the image config. */
  test: string[];
  interval: number;
  timeout: number;
  startPeriod: number;
  startInterval: number;
  retries: number;
}

export interface OnbuildInstruction extends Base {
  kind: 'ONBUILD';
  /** The trigger text stored in the image config (`RUN echo hi`), heredocs appended. */
  expression: string;
  trigger: Instruction;
}

export type Instruction =
  | FromInstruction
  | RunInstruction
  | CmdInstruction
  | EntrypointInstruction
  | ShellInstruction
  | EnvInstruction
  | LabelInstruction
  | MaintainerInstruction
  | ArgInstruction
  | CopyInstruction
  | AddInstruction
  | ExposeInstruction
  | VolumeInstruction
  | UserInstruction
  | WorkdirInstruction
  | StopSignalInstruction
  | HealthcheckInstruction
  | OnbuildInstruction;

export type InstructionKind = Instruction['kind'];

/** What a RUN executes, BuildKit's way of turning heredocs into a command. */
export type RunCommandLine =
  | { kind: 'exec'; args: string[] }
  /** Run `script` through the stage's SHELL (`/bin/sh -c script`). */
  | { kind: 'shell'; script: string }
  /** A single heredoc starting with `#!`: write `data` to a file (mode 0755) and execute it. */
  | { kind: 'file'; name: string; data: string };
