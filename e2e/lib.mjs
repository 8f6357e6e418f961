// Shared helpers of the real-client tests: build Caddy from this checkout,
// run it on loopback ports with a test Caddyfile, stop it afterwards.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, mkdirSync, utimesSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const E2E_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(E2E_DIR, '..');
export const ARTIFACTS = join(ROOT, 'artifacts');

// The site (and API) origin, and a second origin for cross-origin calls.
export const SITE = 'http://localhost:9400';
export const OTHER = 'http://127.0.0.1:9401';
// Another port of the same host: another origin, but the same site, so the
// browser sends the site's SameSite=Lax cookies with its requests.
export const SIBLING = 'http://localhost:9402';
const ADMIN = 'localhost:9409';

// caddyBinary returns $XANOAUTH_CADDY (CI passes the xcaddy-built binary),
// or builds ./cmd/caddy once per machine into the temp dir; the Go build
// cache makes a rebuild of an unchanged checkout take a second or two.
export function caddyBinary() {
  if (process.env.XANOAUTH_CADDY) return process.env.XANOAUTH_CADDY;
  const out = join(tmpdir(), 'xanoauth-e2e', 'caddy');
  mkdirSync(dirname(out), { recursive: true });
  execFileSync('go', ['build', '-o', out, './cmd/caddy'], { cwd: ROOT, stdio: 'inherit' });
  return out;
}

// testCaddyfile: the auth API and login page on localhost:9400, a guarded
// static members area (the example's), and a plain page on 127.0.0.1:9401
// to call the API from another origin.
function testCaddyfile(dir) {
  const site = join(ROOT, 'example', 'site');
  // A static page as old as a real site's (heuristic freshness would keep
  // it for three days), served without templates, so it has ETag and
  // Last-Modified and nothing else.
  const vault = join(dir, 'vault');
  mkdirSync(join(vault, 'vault'), { recursive: true });
  writeFileSync(join(vault, 'vault', 'doc.html'), '<!doctype html><html lang=en><title>Vault</title><h1 id=vault>Private document</h1></html>');
  const old = new Date(Date.now() - 30 * 86400_000);
  utimesSync(join(vault, 'vault', 'doc.html'), old, old);
  return `{
	admin ${ADMIN}
	auto_https off
	persist_config off
	default_bind 127.0.0.1
	xano {
		storage bbolt ${join(dir, 'auth.db')}
		table user {
			fields name
			extras role
			default role member
		}
	}
}

${SITE} {
	@auth path /api:* /login /login/logout
	xano_auth @auth {
		login_page /login
	}
	handle /members/* {
		xano_guard {
			redirect /login
		}
		root * ${site}
		templates
		file_server
	}
	handle /vault/* {
		xano_guard {
			redirect /login
		}
		root * ${vault}
		file_server
	}
	handle /app/* {
		xano_guard {
			header X-User-Id id
		}
		reverse_proxy 127.0.0.1:9403
	}
	log {
		output file ${join(dir, 'access.log')}
	}
	handle {
		root * ${site}
		file_server
	}
}

${OTHER} {
	header Content-Type "text/html; charset=utf-8"
	respond "<!doctype html><html lang=en><title>Another site</title><h1>Another site</h1></html>"
}

${SIBLING} {
	header Content-Type "text/html; charset=utf-8"
	respond "<!doctype html><html lang=en><title>Sibling</title><form id=f method=post action=${SITE}/app/transfer><input name=to value=mallory><button>Go</button></form></html>"
}

# The proxied app: says which user it was told the request is from (any
# Host: reverse_proxy passes the original one on).
http://:9403 {
	respond "transferred for user {header.X-User-Id}"
}
`;
}

// startCaddy runs Caddy with the test Caddyfile in a fresh temp dir (its
// own user database and data dirs) and resolves once it answers.
export async function startCaddy() {
  const bin = caddyBinary();
  const dir = mkdtempSync(join(tmpdir(), 'xanoauth-e2e-run-'));
  const config = join(dir, 'Caddyfile');
  writeFileSync(config, testCaddyfile(dir));
  const env = { ...process.env, XDG_DATA_HOME: join(dir, 'data'), XDG_CONFIG_HOME: join(dir, 'config') };
  const child = spawn(bin, ['run', '--config', config, '--adapter', 'caddyfile'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (b) => { log += b; });
  child.stderr.on('data', (b) => { log += b; });
  let exited = null;
  child.on('exit', (code) => { exited = code; });

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited !== null) throw new Error(`caddy exited with ${exited}:\n${log}`);
    try {
      await fetch(`${SITE}/`, { redirect: 'manual' });
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`caddy did not answer within 30s:\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    log: () => log,
    // accessLog returns the site's access log entries (all seen requests).
    accessLog: () => {
      const f = join(dir, 'access.log');
      return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
    },
    async stop() {
      if (exited === null) {
        const done = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await done;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// uniqueEmail gives every test its own account.
let n = 0;
export function uniqueEmail(tag) {
  n += 1;
  return `${tag}-${process.pid}-${n}@example.com`;
}
