import { chromium } from 'playwright-core';
const BASE='http://localhost:18080';
const b = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox','--disable-background-networking','--autoplay-policy=no-user-gesture-required'] });
import { readFileSync } from 'node:fs';
const TYPES = { js: 'text/javascript', css: 'text/css', html: 'text/html', webmanifest: 'application/manifest+json', svg: 'image/svg+xml' };
async function disk(ctx) {
  await ctx.route(/\/(app|board|shared)\//, async (route) => {
    const u = new URL(route.request().url());
    let p = u.pathname; if (p.endsWith('/')) p += 'index.html';
    try { const body = readFileSync('/work/main/server/web' + p); await route.fulfill({ body, contentType: TYPES[p.split('.').pop()] }); }
    catch { await route.continue(); }
  });
}
const log = (who) => (m) => console.log(who, m.type(), m.text());
const bc = await b.newContext({ baseURL: BASE, viewport: {width:1400,height:900} });
await disk(bc); const bp = await bc.newPage(); bp.on('console', log('board')); bp.on('pageerror', e => console.log('board ERR', e.stack));
bp.setDefaultTimeout(8000);
await bp.goto('/board/'); await bp.fill('#username','sofie'); await bp.fill('#password','makker-demo'); await bp.click('#login button[type=submit]');
await bp.waitForSelector('body[data-live=connected]').catch(e=>console.log('no live', e.message));
await bp.waitForTimeout(1500);
await bp.screenshot({path:'/tmp/shots/board1.png'});
const pc = await b.newContext({ baseURL: BASE, viewport: {width:390,height:844}, isMobile:true, hasTouch:true, geolocation:{latitude:56.1592, longitude:10.1405}, permissions:['geolocation'] });
await disk(pc); const pp = await pc.newPage(); pp.on('console', log('phone')); pp.on('pageerror', e => console.log('phone ERR', e.stack));
pp.setDefaultTimeout(8000);
await pp.goto('/app/'); await pp.fill('#username','anna'); await pp.fill('#password','makker-demo'); await pp.click('#login button[type=submit]');
await pp.click('#start-shift'); await pp.click('#new-visit');
await pp.waitForSelector('#places [aria-checked=true]').catch(e=>console.log(e.message));
await pp.screenshot({path:'/tmp/shots/phone-start.png', fullPage:true});
await pp.click('#go');
await pp.waitForTimeout(1500);
console.log('error:', await pp.textContent('#start-error'));
await pp.screenshot({path:'/tmp/shots/phone-visit.png', fullPage:true});
await bp.waitForTimeout(1000);
await bp.screenshot({path:'/tmp/shots/board2.png'});
await b.close();
