import { posix } from 'node:path';
import type { ImageState } from '../image/index.js';
import type { Instruction } from './plan.js';

/** Per-stage facts the metadata rules need beyond the config. */
export interface StageFlags {
  /** CMD was set in this stage (ENTRYPOINT then keeps it). */
  cmdSet: boolean;
}

function commandOf(image: ImageState, inst: { form: 'exec' | 'shell'; args: string[] }): string[] {
  return inst.form === 'exec' ? [...inst.args] : [...image.shell(), inst.args[0] ?? ''];
}

/** `8000-8002/udp` → three ports, as docker expands ranges. */
function expandPorts(spec: string): string[] {
  const [range, proto] = spec.split('/');
  const m = /^(\d+)-(\d+)$/.exec(range ?? '');
  if (!m) return [spec];
  const out: string[] = [];
  for (let p = Number(m[1]); p <= Number(m[2]); p++) out.push(proto ? `${p}/${proto}` : String(p));
  return out;
}

export function resolveWorkdir(current: string | undefined, path: string): string {
  return posix.normalize(path.startsWith('/') ? path : posix.join(current || '/', path));
}

/**
 * Applies an instruction that only changes the image config. Returns the history text, or undefined
 * when the instruction is not a metadata instruction.
 */
export function applyMetadata(image: ImageState, inst: Instruction, flags: StageFlags): string | undefined {
  switch (inst.kind) {
    case 'ENV': {
      const pairs = inst.pairs;
      for (const p of pairs) image.setEnv(p.key, p.value);
      return `ENV ${pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`;
    }
    case 'LABEL': {
      const pairs = inst.pairs;
      for (const p of pairs) image.setLabel(p.key, p.value);
      return `LABEL ${pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`;
    }
    case 'MAINTAINER':
      image.config.author = inst.maintainer;
      return `MAINTAINER ${inst.maintainer}`;
    case 'CMD': {
      image.setCmd(commandOf(image, inst));
      flags.cmdSet = true;
      return `CMD ${JSON.stringify(image.container.Cmd)}`;
    }
    case 'ENTRYPOINT': {
      const ep = inst.form === 'shell' && !inst.args[0] ? null : commandOf(image, inst);
      image.setEntrypoint(ep, flags.cmdSet);
      return `ENTRYPOINT ${JSON.stringify(ep)}`;
    }
    case 'EXPOSE': {
      const ports = inst.ports.flatMap(expandPorts);
      for (const p of ports) image.expose(p);
      return `EXPOSE map[${ports.map((p) => (p.includes('/') ? p : `${p}/tcp`) + ':{}').join(' ')}]`;
    }
    case 'VOLUME': {
      const paths = inst.paths.filter((p) => p !== '');
      if (paths.length === 0) throw new Error('VOLUME specified can not be an empty string');
      for (const p of paths) image.addVolume(p);
      return `VOLUME ${JSON.stringify(paths)}`;
    }
    case 'USER': {
      const user = inst.user;
      image.setUser(user);
      return `USER ${user}`;
    }
    case 'WORKDIR': {
      const dir = resolveWorkdir(image.container.WorkingDir, inst.path);
      image.setWorkingDir(dir);
      return `WORKDIR ${dir}`;
    }
    case 'STOPSIGNAL': {
      const signal = inst.signal;
      image.setStopSignal(signal);
      return `STOPSIGNAL ${signal}`;
    }
    case 'HEALTHCHECK': {
      if (inst.test[0] === 'NONE') image.setHealthcheck({ Test: ['NONE'] });
      else {
        image.setHealthcheck({
          Test: inst.test,
          ...(inst.interval ? { Interval: inst.interval } : {}),
          ...(inst.timeout ? { Timeout: inst.timeout } : {}),
          ...(inst.startPeriod ? { StartPeriod: inst.startPeriod } : {}),
          ...(inst.startInterval ? { StartInterval: inst.startInterval } : {}),
          ...(inst.retries ? { Retries: inst.retries } : {}),
        });
      }
      return `HEALTHCHECK ${JSON.stringify(image.container.Healthcheck)}`;
    }
    case 'ONBUILD':
      image.addOnBuild(inst.expression);
      return `ONBUILD ${inst.expression}`;
    case 'SHELL':
      image.setShell(inst.shell);
      return `SHELL ${JSON.stringify(inst.shell)}`;
    default:
      return undefined;
  }
}
