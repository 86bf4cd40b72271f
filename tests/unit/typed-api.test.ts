// The typed producer API, checked by the compiler (`tsc --noEmit` in lint, ts-jest here): every
// expect-error directive below must stay an error, and each `typed<T>(x)` must accept x as T exactly.
// At run time: what the typed calls build is the same signature an untyped call builds.
import { Celeriac, chain, chord, group, Chain, Group, type AsyncResult, type GroupResult, type ResultFor, type Signature, type TaskMapOf } from '../../workers';

interface Tasks {
  't.add': (x: number, y: number) => number;
  't.label': (values: number[], prefix: string) => Promise<string>;
}

/** Compiles only when T is exactly the value's type (not wider, not narrower). */
type Exact<A, B> = (<G>() => G extends A ? 1 : 2) extends <G>() => G extends B ? 1 : 2 ? true : false;
function typed<T>() {
  return <V>(value: V, ..._exact: Exact<T, V> extends true ? [] : [never]): V => value;
}

const app = new Celeriac<Tasks>({ brokerUrl: 'memory-never-connected://', resultBackend: null });

function register(a: Celeriac) {
  return { add: a.task('t.add', (x: number, y: number) => x + y), echo: a.task('t.echo', async (v: string) => v) };
}

afterAll(() => app.close());

it('known tasks: signature arguments are checked, results typed through chain, group and chord', () => {
  const add = app.signature('t.add', [1, 2]);
  typed<Signature<number>>()(add);
  typed<Signature<number>>()(app.signature('t.add', [4])); // a tail: the previous result comes first
  typed<Signature<string>>()(app.signature('t.label', ['sum=']));
  // @ts-expect-error a string where t.add takes numbers
  app.signature('t.add', ['1', 2]);
  // @ts-expect-error a tail of (values, prefix) ends with a string
  app.signature('t.label', [[1, 2]]);

  const c = chain(add, app.signature('t.add', [10]), app.signature('t.label', ['=']));
  typed<Chain<string> | Signature<string>>()(c);
  const g = group([add, app.signature('t.label', [[1], 'x'])]);
  typed<Group<[number, string]>>()(g);
  const groupResult: GroupResult<[number, string]> = null as unknown as ResultFor<typeof g>;
  typed<AsyncResult<string> | GroupResult<string & unknown[]>>()(null as unknown as ResultFor<typeof c>);
  const body = chord([add, add], app.signature('t.label', ['=']));
  const joined: string = null as unknown as Awaited<ReturnType<ResultFor<typeof body>['get']>>;
  // @ts-expect-error the chord's body gives a string
  const notJoined: number = null as unknown as Awaited<ReturnType<ResultFor<typeof body>['get']>>;
  void [groupResult, joined, notJoined];
  expect(body.body?.task).toBe('t.label');

  expect(c).toBeInstanceOf(Chain);
  expect((c as Chain).tasks.map((t) => [t.task, t.args])).toEqual([['t.add', [1, 2]], ['t.add', [10]], ['t.label', ['=']]]);
  expect(g).toBeInstanceOf(Group);
  expect(add.toDict()).toEqual(new Celeriac().signature('t.add', [1, 2]).toDict());
});

it('sendTask: known names take their arguments, unknown names stay untyped, TaskMapOf derives the map', () => {
  const compileOnly = (): void => {
    typed<Promise<AsyncResult<number>>>()(app.sendTask('t.add', [1, 2]));
    typed<Promise<AsyncResult<string>>>()(app.sendTask('t.label', [[1], 'x']));
    // @ts-expect-error one argument short
    void app.sendTask('t.add', [1]);
    // @ts-expect-error a known name cannot go untyped by accident
    void app.sendTask('t.add', ['x', 'y'], {}, {});
    void app.sendTask<boolean>('py.anything', [1, 'x']);
  };
  expect(typeof compileOnly).toBe('function');

  type Derived = TaskMapOf<ReturnType<typeof register>>;
  typed<{ 't.add': (x: number, y: number) => number; 't.echo': (v: string) => string }>()(null as unknown as Derived);
  const handles = register(new Celeriac());
  expect(handles.add.name).toBe('t.add');
  typed<'t.add'>()(handles.add.name);
});
