import { loadOnce } from '../../lambdas/commons/lazy';

describe('loadOnce', () => {
  it('loads once for callers at the same time and after, and keeps the value', async () => {
    let loads = 0;
    const get = loadOnce(async () => ({ n: ++loads }));
    const [a, b] = await Promise.all([get(), get()]);
    expect(a).toBe(b);
    expect(await get()).toBe(a);
    expect(loads).toBe(1);
  });

  it('does not keep a failed load: the next use tries again', async () => {
    let loads = 0;
    const get = loadOnce(async () => {
      if (++loads === 1) throw new Error('chunk not readable');
      return 'loaded';
    });
    await expect(get()).rejects.toThrow('chunk not readable');
    await expect(get()).resolves.toBe('loaded');
    expect(loads).toBe(2);
  });
});
