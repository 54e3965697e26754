import { TtlCache } from '../../lambdas/commons/ttl-cache';

describe('TtlCache', () => {
  let now = 0;
  const clock = () => now;
  const counting = () => {
    let loads = 0;
    return { load: (value: string) => () => Promise.resolve(`${value}#${++loads}`), loads: () => loads };
  };

  beforeEach(() => (now = 1_000));

  it('serves a value until it expires, then loads it again', async () => {
    const cache = new TtlCache<string>(60_000, 10, clock);
    const source = counting();
    expect(await cache.get('a', source.load('a'))).toBe('a#1');
    now += 59_999;
    expect(await cache.get('a', source.load('a'))).toBe('a#1');
    now += 1;
    expect(await cache.get('a', source.load('a'))).toBe('a#2');
  });

  it('shares one load between concurrent callers of a key', async () => {
    const cache = new TtlCache<string>(60_000, 10, clock);
    let release!: (value: string) => void;
    let loads = 0;
    const slow = () => {
      loads++;
      return new Promise<string>((resolve) => (release = resolve));
    };
    const both = Promise.all([cache.get('a', slow), cache.get('a', slow)]);
    release('v');
    expect(await both).toEqual(['v', 'v']);
    expect(loads).toBe(1);
  });

  it('forgets a failed load at once', async () => {
    const cache = new TtlCache<string>(60_000, 10, clock);
    await expect(cache.get('a', () => Promise.reject(new Error('Ap21 down')))).rejects.toThrow('Ap21 down');
    expect(await cache.get('a', () => Promise.resolve('back'))).toBe('back');
  });

  it('drops the oldest entries beyond its size, and caches nothing with a TTL of 0', async () => {
    const cache = new TtlCache<string>(60_000, 2, clock);
    const source = counting();
    for (const key of ['a', 'b', 'c']) await cache.get(key, source.load(key));
    expect(await cache.get('a', source.load('a'))).toBe('a#4');
    expect(await cache.get('c', source.load('c'))).toBe('c#3');
    const off = new TtlCache<string>(0, 2, clock);
    const other = counting();
    await off.get('a', other.load('a'));
    await off.get('a', other.load('a'));
    expect(other.loads()).toBe(2);
  });
});
