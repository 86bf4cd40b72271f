/**
 * The Lua scripts of rq's layout, one atomic multi-key change each (see commands/*.lua).
 * finish and maintain write the same job-end pieces: commands/lib.lua is prepended to them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LuaScript } from '../index';

const dir = join(__dirname, 'commands');
const read = (name: string): string => readFileSync(join(dir, `${name}.lua`), 'utf8');
const load = (name: string): LuaScript => new LuaScript(name, read(name));
const withLib = (name: string): LuaScript => new LuaScript(name, `${read('lib')}\n${read(name)}`);

export const CLAIM = load('claim');
export const FINISH = withLib('finish');
export const MAINTAIN = withLib('maintain');
export const HEARTBEAT = load('heartbeat');
export const REGISTER = load('register');
export const DEATH = load('death');
export const SCHEDULE = load('schedule');
export const ENQUEUE = load('enqueue');
