// fp32 vs bf16 oneDNN convolutions as Strata's CPU backend runs them: f32 NHWC activations,
// OHWI weights (layout `any` inside, Winograd for >=64 channels in fp32); bf16 = activation inputs
// reordered to bf16 NHWC, weights to bf16 `any`, f32 outputs NHWC (diff weights f32 `any`).
// Build: gcc -O2 -fopenmp cpu-bf16-ab.c -o ab -ldnnl; run: ./ab THREADS REPS
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
// CPU time, not wall time: the machine is shared, and CPU time counts only the work this process
// did (1 thread: the calling thread's; 2 threads: the process's, both OpenMP threads summed).
static clockid_t CLK=CLOCK_THREAD_CPUTIME_ID;
static double now(){struct timespec t;clock_gettime(CLK,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define CK(x) do{dnnl_status_t rc_=(x); if(rc_){printf("err %d at %s line %d\n",rc_,#x,__LINE__);exit(1);}}while(0)
static dnnl_engine_t E; static dnnl_stream_t S;
static dnnl_memory_desc_t md(int n,const dnnl_dim_t*d,dnnl_data_type_t t,dnnl_format_tag_t f){dnnl_memory_desc_t m;CK(dnnl_memory_desc_init_by_tag(&m,n,d,t,f));return m;}
static dnnl_memory_t mem(const dnnl_memory_desc_t*m){dnnl_memory_t x;CK(dnnl_memory_create(&x,m,E,DNNL_MEMORY_ALLOCATE));
  size_t b=dnnl_memory_desc_get_size(m); void*h; dnnl_memory_get_data_handle(x,&h); memset(h,0,b);
  if(m->data_type==dnnl_f32){float*f=h; for(size_t i=0;i<b/4;i++) f[i]=(float)((i*7919)%97)/97.f-0.5f;} return x;}
typedef struct { dnnl_primitive_t p; dnnl_exec_arg_t a[4]; int n; const char* impl; } Run;
static double exec(Run*r){double t=now(); CK(dnnl_primitive_execute(r->p,S,r->n,r->a)); dnnl_stream_wait(S); return now()-t;}
static Run reorder(dnnl_memory_t from, dnnl_memory_t to){Run r; const dnnl_memory_desc_t *a,*b; dnnl_memory_get_memory_desc(from,&a); dnnl_memory_get_memory_desc(to,&b);
  dnnl_primitive_desc_t pd; CK(dnnl_reorder_primitive_desc_create(&pd,a,E,b,E,NULL)); CK(dnnl_primitive_create(&r.p,pd));
  r.a[0]=(dnnl_exec_arg_t){DNNL_ARG_FROM,from}; r.a[1]=(dnnl_exec_arg_t){DNNL_ARG_TO,to}; r.n=2; return r;}
static const char* impl(dnnl_primitive_desc_t pd){const char*s; dnnl_primitive_desc_query(pd,dnnl_query_impl_info_str,0,&s); return s;}
typedef struct { Run fwd,bwd_d,bwd_w, rs,rw,rdd; int has_r; } Conv;
static Conv make(int N,int C,int K,int H,int st,int bf,int wino){
  Conv c; memset(&c,0,sizeof c); int OH=(H+2-3)/st+1;
  dnnl_dims_t sd={N,C,H,H}, wd={K,C,3,3}, dd={N,K,OH,OH}, str={st,st}, pl={1,1}, pr={(OH-1)*st+3-H-1,(OH-1)*st+3-H-1};
  dnnl_data_type_t it=bf?dnnl_bf16:dnnl_f32;
  dnnl_memory_desc_t us=md(4,sd,dnnl_f32,dnnl_nhwc), ud=md(4,dd,dnnl_f32,dnnl_nhwc), uw=md(4,wd,dnnl_f32,dnnl_ohwi);
  dnnl_memory_desc_t s= bf? md(4,sd,it,dnnl_nhwc): wino? md(4,sd,it,dnnl_format_tag_any):us, w=md(4,wd,it,dnnl_format_tag_any), d= wino? md(4,dd,dnnl_f32,dnnl_format_tag_any):ud;
  dnnl_memory_desc_t dds= bf? md(4,dd,it,dnnl_nhwc): wino? md(4,dd,it,dnnl_format_tag_any):ud; dnnl_memory_desc_t dsrc= wino? md(4,sd,dnnl_f32,dnnl_format_tag_any):us;
  dnnl_alg_kind_t alg= wino?dnnl_convolution_winograd:dnnl_convolution_direct;
  dnnl_convolution_desc_t cd; CK(dnnl_convolution_forward_desc_init(&cd,dnnl_forward_training,alg,&s,&w,NULL,&d,str,pl,pr));
  dnnl_primitive_desc_t fpd; CK(dnnl_primitive_desc_create(&fpd,&cd,NULL,E,NULL)); CK(dnnl_primitive_create(&c.fwd.p,fpd)); c.fwd.impl=impl(fpd);
  dnnl_memory_t ms=mem(dnnl_primitive_desc_query_md(fpd,dnnl_query_src_md,0)), mw=mem(dnnl_primitive_desc_query_md(fpd,dnnl_query_weights_md,0)), mdst=mem(dnnl_primitive_desc_query_md(fpd,dnnl_query_dst_md,0));
  c.fwd.a[0]=(dnnl_exec_arg_t){DNNL_ARG_SRC,ms}; c.fwd.a[1]=(dnnl_exec_arg_t){DNNL_ARG_WEIGHTS,mw}; c.fwd.a[2]=(dnnl_exec_arg_t){DNNL_ARG_DST,mdst}; c.fwd.n=3;
  dnnl_convolution_desc_t bd; CK(dnnl_convolution_backward_data_desc_init(&bd,alg,&dsrc,&w,&dds,str,pl,pr));
  dnnl_primitive_desc_t bpd; CK(dnnl_primitive_desc_create(&bpd,&bd,NULL,E,fpd)); CK(dnnl_primitive_create(&c.bwd_d.p,bpd)); c.bwd_d.impl=impl(bpd);
  dnnl_memory_t mdd=mem(dnnl_primitive_desc_query_md(bpd,dnnl_query_diff_dst_md,0)), mw2=mem(dnnl_primitive_desc_query_md(bpd,dnnl_query_weights_md,0)), mds=mem(dnnl_primitive_desc_query_md(bpd,dnnl_query_diff_src_md,0));
  c.bwd_d.a[0]=(dnnl_exec_arg_t){DNNL_ARG_DIFF_DST,mdd}; c.bwd_d.a[1]=(dnnl_exec_arg_t){DNNL_ARG_WEIGHTS,mw2}; c.bwd_d.a[2]=(dnnl_exec_arg_t){DNNL_ARG_DIFF_SRC,mds}; c.bwd_d.n=3;
  dnnl_memory_desc_t dw=md(4,wd,dnnl_f32,dnnl_format_tag_any);
  dnnl_convolution_desc_t wdsc; CK(dnnl_convolution_backward_weights_desc_init(&wdsc,alg,&s,&dw,NULL,&dds,str,pl,pr));
  dnnl_primitive_desc_t wpd; CK(dnnl_primitive_desc_create(&wpd,&wdsc,NULL,E,fpd)); CK(dnnl_primitive_create(&c.bwd_w.p,wpd)); c.bwd_w.impl=impl(wpd);
  dnnl_memory_t ms3=mem(dnnl_primitive_desc_query_md(wpd,dnnl_query_src_md,0)), mdd3=mem(dnnl_primitive_desc_query_md(wpd,dnnl_query_diff_dst_md,0)), mdw=mem(dnnl_primitive_desc_query_md(wpd,dnnl_query_diff_weights_md,0));
  c.bwd_w.a[0]=(dnnl_exec_arg_t){DNNL_ARG_SRC,ms3}; c.bwd_w.a[1]=(dnnl_exec_arg_t){DNNL_ARG_DIFF_DST,mdd3}; c.bwd_w.a[2]=(dnnl_exec_arg_t){DNNL_ARG_DIFF_WEIGHTS,mdw}; c.bwd_w.n=3;
  if(bf){ c.has_r=1; c.rs=reorder(mem(&us),ms); c.rw=reorder(mem(&uw),mw); c.rdd=reorder(mem(&ud),mdd); }
  return c;}
static int cmpd(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}

// Dense layers: dnnl_sgemm (f32) against a bf16 matmul primitive (bf16 A, B; f32 C), the latter
// with the f32 -> bf16 reorders of A and B it would need; Strata's bf16 GEMM is sgemm on rounded copies.
static void gemmrow(int M,int N,int K,int R){
  float *A=malloc(sizeof(float)*M*K),*B=malloc(sizeof(float)*K*N),*C=malloc(sizeof(float)*M*N);
  for(long i=0;i<(long)M*K;i++)A[i]=(i%13)/13.f; for(long i=0;i<(long)K*N;i++)B[i]=(i%7)/7.f;
  dnnl_dims_t a={M,K},b={K,N},c={M,N};
  dnnl_memory_desc_t ua=md(2,a,dnnl_f32,dnnl_ab),ub=md(2,b,dnnl_f32,dnnl_ab),ba=md(2,a,dnnl_bf16,dnnl_ab),bb=md(2,b,dnnl_bf16,dnnl_ab),uc=md(2,c,dnnl_f32,dnnl_ab);
  dnnl_matmul_desc_t d; CK(dnnl_matmul_desc_init(&d,&ba,&bb,NULL,&uc)); dnnl_primitive_desc_t pd; CK(dnnl_primitive_desc_create(&pd,&d,NULL,E,NULL));
  Run mm; CK(dnnl_primitive_create(&mm.p,pd)); mm.impl=impl(pd);
  dnnl_memory_t mA=mem(&ba),mB=mem(&bb),mC=mem(&uc),fA=mem(&ua),fB=mem(&ub);
  mm.a[0]=(dnnl_exec_arg_t){DNNL_ARG_SRC,mA}; mm.a[1]=(dnnl_exec_arg_t){DNNL_ARG_WEIGHTS,mB}; mm.a[2]=(dnnl_exec_arg_t){DNNL_ARG_DST,mC}; mm.n=3;
  Run ra=reorder(fA,mA), rb=reorder(fB,mB);
  double t[4][64];
  for(int r=-1;r<R;r++){ double t0=now(); CK(dnnl_sgemm('N','N',M,N,K,1.f,A,K,B,N,0.f,C,N)); double t1=now(); if(r<0)continue; t[0][r]=t1-t0;
    t[1][r]=exec(&mm); t[2][r]=exec(&ra); t[3][r]=exec(&rb);}
  double m[4]; for(int k=0;k<4;k++){qsort(t[k],R,sizeof(double),cmpd); m[k]=t[k][0]*1e3;}
  printf("gemm %4dx%4dx%4d | sgemm %.3f | bf16 matmul %.3f (%s) %.2fx | + reorders %.3f: %.2fx\n",M,N,K,m[0],m[1],mm.impl,m[0]/m[1],m[2]+m[3],m[0]/(m[1]+m[2]+m[3]));
  free(A);free(B);free(C);}
int main(int argc,char**argv){ CK(dnnl_engine_create(&E,dnnl_cpu,0)); CK(dnnl_stream_create(&S,E,dnnl_stream_default_flags));
  int sh[][5]={{128,3,16,32,1},{128,16,16,32,1},{128,16,32,32,2},{128,32,32,16,1},{128,32,64,16,2},{128,64,64,8,1},{40,1,48,28,1},{40,48,48,14,1},{40,48,48,7,1},{128,1,48,28,1},{128,48,48,14,1},{128,48,48,7,1}};
  if(argc>3){ int R=atoi(argv[2]); omp_set_num_threads(atoi(argv[1])); gemmrow(128,500,432,R); return 0; }
  int R=atoi(argc>2?argv[2]:"7"); int T=atoi(argc>1?argv[1]:"1"); omp_set_num_threads(T); if(T>1) CLK=CLOCK_PROCESS_CPUTIME_ID;
  if(R>64) R=64;
  printf("threads %d, best of %d interleaved reps, CPU ms per call (%s CPU time)\n",T,R,T>1?"process":"thread");
  printf("%-22s %-6s | %8s %8s %8s | %8s %8s %8s | %6s %6s %6s | %s\n","shape N,C->K,H,s","","f32 fwd","bf16 fwd","ratio","f32 bwdD","bf16","ratio","bwdW f32","bf16","ratio","reorders(ms) src,w,dd");
  for(unsigned i=0;i<sizeof sh/sizeof sh[0];i++){int*q=sh[i];
    int wino = q[1]>=64&&q[2]>=64&&q[4]==1;
    Conv f=make(q[0],q[1],q[2],q[3],q[4],0,wino), b=make(q[0],q[1],q[2],q[3],q[4],1,0);
    double t[9][64]; Run* rs[9]={&f.fwd,&b.fwd,&f.bwd_d,&b.bwd_d,&f.bwd_w,&b.bwd_w,&b.rs,&b.rw,&b.rdd};
    for(int k=0;k<9;k++) exec(rs[k]);
    for(int r=0;r<R;r++) for(int k=0;k<9;k++) t[k][r]=exec(rs[k]);
    double m[9]; for(int k=0;k<9;k++){qsort(t[k],R,sizeof(double),cmpd); m[k]=t[k][0]*1e3;}
    printf("%3d,%2d->%2d,%2dpx,s%d   %-6s| %8.3f %8.3f %7.2fx | %8.3f %8.3f %7.2fx | %8.3f %6.3f %6.2fx | %.3f %.3f %.3f\n",q[0],q[1],q[2],q[3],q[4],wino?"(wino)":"",
      m[0],m[1],m[0]/m[1],m[2],m[3],m[2]/m[3],m[4],m[5],m[4]/m[5],m[6],m[7],m[8]);
    printf("    impls f32: %s / %s / %s ; bf16: %s / %s / %s\n",f.fwd.impl,f.bwd_d.impl,f.bwd_w.impl,b.fwd.impl,b.bwd_d.impl,b.bwd_w.impl);
    fflush(stdout);
  }
  // The seed cnn's dense layers at batch 128 (48*3*3 -> 500 -> 250 -> 10), forward shapes.
  gemmrow(128,500,432,R); gemmrow(128,250,500,R); gemmrow(128,10,250,R); gemmrow(432,500,128,R);
}
