/** The Lua scripts of rq's layout, one atomic multi-key change each (see commands/*.lua). */
import { join } from 'node:path';
import { LuaScript } from '../index';

const dir = join(__dirname, 'commands');
const load = (name: string): LuaScript => LuaScript.fromFile(name, join(dir, `${name}.lua`));

export const CLAIM = load('claim');
export const FINISH = load('finish');
export const HEARTBEAT = load('heartbeat');
export const REGISTER = load('register');
export const DEATH = load('death');
export const SCHEDULE = load('schedule');
export const ENQUEUE = load('enqueue');
