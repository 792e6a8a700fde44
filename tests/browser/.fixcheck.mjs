import { AxeBuilder } from '@axe-core/playwright';
import { launch, url, AXE_TAGS } from '/work/main/tests/browser/support.mjs';
const b = await launch();
for (const vp of [{ width: 360, height: 740 }, { width: 1280, height: 800 }]) {
  const c = await b.newContext({ viewport: vp, isMobile: vp.width === 360 }); const p = await c.newPage();
  for (const path of ['/aide/tarifs', '/aide/credits-et-limites', '/aide/video', '/aide/guide-d-achat', '/simulateur?type=video&duree=10&quantite=3&plan=eglise']) {
    await p.goto(url(path));
    await p.evaluate(() => document.querySelectorAll('.table-wrap').forEach((d, i) => { d.setAttribute('tabindex', '0'); d.setAttribute('role', 'region'); const cap = d.querySelector('caption'); if (cap) { cap.id = 'cap' + i; d.setAttribute('aria-labelledby', cap.id); } else d.setAttribute('aria-label', 'Tableau'); }));
    const r = await new AxeBuilder({ page: p }).withTags(AXE_TAGS).analyze();
    console.log(vp.width, path, r.violations.map(v => v.id));
  }
  await c.close();
}
await b.close();
