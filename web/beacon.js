/* vitals-proxy beacon, see web/beacon.md */
((w,d,P,N,M) => {
let tag=d.currentScript,
ds=tag?.dataset,smp=parseFloat(ds?.sample),EP=tag?.src.split('.js')[0],INF=1/0,max=M.max,min=M.min,
sup=w.PerformanceObserver?.supportedEntryTypes || [],
RK=`startTime s redirectStart rds redirectEnd rde fetchStart fs domainLookupStart dls domainLookupEnd dle
connectStart cs connectEnd ce secureConnectionStart scs requestStart rqs responseStart rps responseEnd rpe
domInteractive di domContentLoadedEventStart dcl domContentLoadedEventEnd dcle domComplete dc
loadEventStart ls loadEventEnd le`.split(/\s+/),
V=[],A=0,k=0,B,ro,hid,H,lcpDone,lastIn=-INF,lcp,cls,inp,ie=[],lf=[],
on=(t,f,o=w) => o.addEventListener(t,f,{capture:1,passive:1}),
key=() => location.pathname+(ds.keepQuery!=null?location.search:''),
obs=(type,cb,o,ob) => {
try {
if (sup.includes(type)) (ob=new PerformanceObserver(l => queueMicrotask(() => cb(l.getEntries()))))
.observe({type,buffered:1,...o}),ob.cb=cb;
} catch {}
return ob;
},
take=ob => ob && ob.cb(ob.takeRecords()),
navE=(e=P.getEntriesByType('navigation')[0]) => e && e.responseStart>0 && e.responseStart<P.now() && e,
ttfb0=(e=navE()) => e?max(e.responseStart-A,0):0,
loadState=(t,e=navE() || {}) => d.readyState=='loading' || t<e.domInteractive?'loading'
:!e.domContentLoadedEventStart || t<e.domContentLoadedEventStart?'dom-interactive'
:!e.domComplete || t<e.domComplete?'dom-content-loaded':'complete',
sel=(n,s='',p) => {
for (; n && n.nodeType!=9; n=n.parentNode) {
p=n.id?'#'+n.id:[n.nodeType==1?n.nodeName.toLowerCase()
:n.nodeName.toUpperCase().replace(/^#/,''),...[...n.classList || []].sort()].join('.');
if (s.length+p.length>99) return s || p;
s=s?p+'>'+s:p;
if (n.id) break;
}
return s;
},
view=(nav,t,vid=H.c.vid.slice(0,50)+'-'+ ++k,v={c:{vid,pvid:H?.c.vid,url:key(),nav},t,m:{},ri:0,res:[],cls:0,se:[],
il:[],im:new Map(),ic:P.interactionCount || 0}) => (V.push(v)>20 && V.shift(),v),
vat=t => [...V].reverse().find(v => v.t<=t) || V[0],
set=(v,n,val,a,f) => Object.assign(v.m[n] || (v.m[n]={n,id:v.c.vid+'-'+n}),{v:val,a,f}),
rel=u => (u.startsWith(location.origin+'/')?u.slice(location.origin.length):u).slice(0,2048),
r1=x => M.round(x*10)/10,
renc=(e,t0,o={u:rel(e.name),i:e.initiatorType,d:r1(e.duration),ts:e.transferSize,
eb:e.encodedBodySize,db:e.decodedBodySize,p:e.nextHopProtocol,rb:e.renderBlockingStatus,
st:e.responseStatus,dt:e.deliveryType,ty:e.type,rc:e.redirectCount,
sv:e.serverTiming?.slice(0,16).map(x => ({n:x.name.slice(0,200),d:max(x.duration,0),de:x.description.slice(0,200)}))}) => {
for (let i=0; RK[i]; i+=2) e[RK[i]]>0 && (o[RK[i+1]]=max(r1(e[RK[i]]-t0),0));
return o;
},
len=s => s.length+s.replace(/[\0-\x7f]+/g,'').length*2,
post=(o,p) => {
o=JSON.stringify(o);
p[0] && (o=o.slice(0,-1)+',"res":['+p+']}');
let F=k => fetch(EP,{method:'POST',body:o,keepalive:k});
try { if (N.sendBeacon(EP,o)) return; } catch {}
F(1).catch(() => F(0).catch(() => 0));
},
ctx=(v,iw=innerWidth) => ({v:1,...v.c,
t0:P.timeOrigin+v.t,dev:iw<768?'mobile':iw<1024?'tablet':'desktop',ect:N.connection?.effectiveType,
mem:N.deviceMemory,ri:v.ri}),
enc=(v,e,x) => e.$ || (e.$=[x=JSON.stringify(renc(e,v.t)),len(x)]),
send=(v,o=ctx(v),m=[],p=[],e,n,r) => {
for (let x of Object.values(v.m)) if ((v.a || x.f) && x.v!==x.s) {
m.push(r={n:x.n,id:x.id,v:x.v,d:x.v-(x.s || 0)});
try { x.a && (r.a=x.a()); } catch {}
x.s=x.v;
}
m[0] && (o.m=m);
if (v==H && !v.nt && (e=navE()) && (v.a || e.loadEventEnd)) o.nt=renc(e,0),v.nt=1;
for (n=len(JSON.stringify(o)); v.ri<v.res.length && !p[199] && (n+=(r=enc(v,v.res[v.ri]))[1]+1)<49e3|!p[0]; v.ri++) p.push(r[0]);
(o.m || o.nt || p[0]) && post(o,p);
v.ri<v.res.length || (v.w=v.a=0);
},
run=(dl,t=P.now(),v,e,i) => {
B=0;
for (v of V) {
for (i=v.ri; e=v.res[i++];) if (e.$!=enc(v,e) && (P.now()-t>2 || dl?.timeRemaining()<1)) return later();
while (v.w) if (P.now()-t>1) return later(); else send(v);
}
},
later=() => B || (B=(w.requestIdleCallback || setTimeout)(run,{timeout:1e3})),
flush=(v,all) => (v.w=1,v.a=v.a || all,later()),
inpSet=(v,n=(P.interactionCount || 0)-v.ic,x=v.il[min(v.il.length-1,n/50|0)]) =>
x?set(v,'INP',x.l,(f=x.e[0],rt=f.startTime+f.duration,g=ie.filter(y => M.abs(y.startTime+y.duration-rt)<=8).concat(f),
ps=max(f.startTime,min(...g.map(y => y.processingStart))),np=max(rt,ps),
pe=min(np,max(...g.map(y => y.processingEnd))),sc={}) => {
for (let s of lf) if (s.startTime<pe && s.startTime+s.duration>f.startTime && s.duration>(sc.duration || 0)) sc=s;
return {target:x.s,type:f.name.startsWith('key')?'keyboard':'pointer',time:f.startTime-v.t,
inputDelay:ps-f.startTime,processing:pe-ps,presentation:np-pe,loadState:loadState(f.startTime),
scriptUrl:sc.sourceURL && rel(sc.sourceURL),scriptDuration:sc.duration};
}):n && v!=H && set(v,'INP',8),
lcpFin=() => lcpDone || (take(lcp),lcpDone=1,H.m.LCP && (H.m.LCP.f=1)),
drain=() => (lcpFin(),take(cls),take(inp),take(ro)),
fin=v => (inpSet(v),flush(v,1)),
hide=() => (drain(),V.map(fin),run(null,INF)),
soft=(tr,c=V[V.length-1],t=P.now(),v) => key()!=c.c.url && (drain(),
set(v=view('soft-navigation',t-lastIn<3e3 && lastIn>c.t && !tr?lastIn:t),'CLS',0),
c.res=c.res.filter((e,i) => i<c.ri || e.startTime<v.t || (e.$=0,!v.res.push(e))),
c.il=c.il.filter(x => x.e[0].startTime<v.t || !v.il.push(x) || v.im.set(x.id,x) && 0),
fin(c)),
start=(ne=navE()) => {
A=ne?.activationStart || 0;
hid=d.hidden?0:INF;
let fcp=obs('paint',es => es.map(e => {
if (e.name!='first-contentful-paint' || (fcp.disconnect(),e.startTime>=hid)) return;
let v=max(e.startTime-A,0),t=ttfb0();
set(H,'FCP',v,() => ({ttfb:t,firstByteToFCP:v-t,loadState:loadState(e.startTime)}),1);
set(H,'CLS',0);
cls=obs('layout-shift',es => es.map(s => {
let v=vat(s.startTime),f=v.se[0],l=v.se[v.se.length-1],ce;
if (s.hadRecentInput) return;
if (v.sv && s.startTime-l.startTime<1e3 && s.startTime-f.startTime<5e3) v.sv+=s.value,v.se.push(s);
else v.sv=s.value,v.se=[s];
if (v.sv>v.cls) ce=v.se,set(v,'CLS',v.cls=v.sv,(L=ce.reduce((a,b) => a.value>b.value?a:b),
src=L.sources.find(x => x.node && x.node.nodeType==1) || L.sources[0]) =>
({target:sel(src?.node) || undefined,time:L.startTime-v.t,value:L.value,loadState:loadState(L.startTime)}));
}));
}));
lcp=obs('largest-contentful-paint',(es,e=es[es.length-1],lt) => {
if (lcpDone || !e || e.startTime>=hid) return;
lt=e.element?sel(e.element):e.id?'#'+e.id:undefined;
set(H,'LCP',max(e.startTime-A,0),(T=ttfb0(),val=H.m.LCP.v,ok=r => r.name==e.url && (r.requestStart || r.startTime)<=e.startTime,
r=e.url && [...H.res].reverse().find(ok),
rs=max(T,r?(r.requestStart || r.startTime)-A:0),re=min(val,max(rs,r?r.responseEnd-A:0))) =>
({target:lt,url:e.url && rel(e.url),ttfb:T,loadDelay:rs-T,loadDuration:re-rs,renderDelay:val-re}));
});
inp=w.PerformanceEventTiming && 'interactionId' in PerformanceEventTiming.prototype &&
obs('event',es => es.map((e,v,L,x) => {
ie.push(e)>100 && ie.shift();
v=vat(e.startTime),L=v.il,x=v.im.get(e.interactionId);
if (e.interactionId && (x || !L[9] || e.duration>L[9].l)) {
if (!x) v.im.set(e.interactionId,x={id:e.interactionId,l:e.duration,e:[e]}),L.push(x);
else if (e.duration>x.l) x.e=[e],x.l=e.duration;
else if (e.duration==x.l && e.startTime==x.e[0].startTime) x.e.push(e);
L.sort((a,b) => b.l-a.l).splice(10).map(y => v.im.delete(y.id));
x.s=x.s || sel(x.e.find(y => y.target)?.target);
}
}),{durationThreshold:40});
inp && inp.observe({type:'first-input',buffered:1});
obs('long-animation-frame',es => es.map(l => lf.push(...l.scripts)>99 && lf.splice(0,50)));
let loaded=() => setTimeout(() => {
navE() && set(H,'TTFB',ttfb0(),(e=navE(),c=x => max(x-A,0),T=ttfb0(),ws=c(e.workerStart || e.fetchStart),
dl=c(e.domainLookupStart),cs=c(e.connectStart),ce=c(e.connectEnd)) =>
({waiting:ws,cache:dl-ws,dns:cs-dl,connection:ce-cs,request:T-ce}),1);
setTimeout(() => flush(H),1e3);
});
d.readyState=='complete'?loaded():on('load',loaded);
on('visibilitychange',e => d.hidden && (hid=min(hid,e.timeStamp),hide()));
on('pagehide',hide);
on('pageshow',(e,v) => e.persisted && (v=view('back-forward-cache',e.timeStamp),
setTimeout(() => hid=d.hidden?0:INF),set(v,'CLS',0),set(v,'TTFB',0,0,1),
requestAnimationFrame(() => requestAnimationFrame(() => set(v,'FCP',P.now()-e.timeStamp,0,1) && set(v,'LCP',v.m.FCP.v,0,1)))));
w.navigation && on('currententrychange',e => soft(e.navigationType=='traverse'),navigation);
for (let t of ['pointerdown','keydown','click']) on(t,e => e.isTrusted && (t<'p' && lcpFin(),t>'k' && (lastIn=e.timeStamp)));
};
if (!tag || !sup[0] || w.__vpb || smp>=0 && M.random()>=smp) return;
w.__vpb=1;
P.setResourceTimingBufferSize(1e3);
let n0=P.getEntriesByType('navigation')[0] || {};
H=view(d.prerendering || n0.activationStart>0?'prerender':d.wasDiscarded?'restore'
:n0.type?.replace('_','-') || 'navigate',0,/^[\w-]{8,64}$/.test(ds.vid || '')?ds.vid:'b'+Date.now()+M.random().toString(36).slice(2));
ro=obs('resource',es => later(es.map((e,v) => (v=vat(e.startTime)).res.length<2e3 && !e.name.startsWith(EP) && v.res.push(e))));
d.prerendering?on('prerenderingchange',() => start(),d):start();
})(window,document,performance,navigator,Math);
