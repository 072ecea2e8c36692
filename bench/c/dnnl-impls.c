// Every oneDNN implementation (and Winograd) of a few VGG/ResNet 3x3 convolutions, per direction,
// wall time at OMP_NUM_THREADS threads (bench/NOTES.md section 9).
//   cc -O2 dnnl-impls.c -o /tmp/impls -ldnnl && OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive /tmp/impls
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <oneapi/dnnl/dnnl.h>
#define CK(x) do{dnnl_status_t s=(x); if(s!=dnnl_success){fprintf(stderr,"%s: %d\n",#x,s); exit(1);}}while(0)
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static dnnl_engine_t eng; static dnnl_stream_t st;
static dnnl_memory_t mem(const dnnl_memory_desc_t*md){dnnl_memory_t m;CK(dnnl_memory_create(&m,md,eng,DNNL_MEMORY_ALLOCATE));return m;}
static void timeit(dnnl_primitive_desc_t pd, int kind, double flops){
  const char*impl; CK(dnnl_primitive_desc_query(pd,dnnl_query_impl_info_str,0,&impl));
  dnnl_primitive_t p; if(dnnl_primitive_create(&p,pd)!=dnnl_success){printf("  %-28s (create failed)\n",impl);return;}
  dnnl_exec_arg_t a[4]; int n=0;
  #define ARG(k,q) do{const dnnl_memory_desc_t*md=dnnl_primitive_desc_query_md(pd,q,0); a[n].arg=k; a[n].memory=mem(md); n++;}while(0)
  if(kind==0){ARG(DNNL_ARG_SRC,dnnl_query_src_md);ARG(DNNL_ARG_WEIGHTS,dnnl_query_weights_md);ARG(DNNL_ARG_DST,dnnl_query_dst_md);}
  if(kind==1){ARG(DNNL_ARG_DIFF_DST,dnnl_query_diff_dst_md);ARG(DNNL_ARG_WEIGHTS,dnnl_query_weights_md);ARG(DNNL_ARG_DIFF_SRC,dnnl_query_diff_src_md);}
  if(kind==2){ARG(DNNL_ARG_SRC,dnnl_query_src_md);ARG(DNNL_ARG_DIFF_DST,dnnl_query_diff_dst_md);ARG(DNNL_ARG_DIFF_WEIGHTS,dnnl_query_diff_weights_md);}
  const dnnl_memory_desc_t*smd=dnnl_primitive_desc_query_md(pd,kind==1?dnnl_query_diff_src_md:dnnl_query_src_md,0);
  double best=1e9; for(int r=0;r<8;r++){double t=now(); CK(dnnl_primitive_execute(p,st,n,a)); CK(dnnl_stream_wait(st)); t=now()-t; if(t<best)best=t;}
  printf("  %-28s %8.2f ms %6.0f GF/s  src tag %s\n",impl,best*1e3,flops/best/1e9, smd->format_kind==dnnl_blocked && smd->format_desc.blocking.inner_nblks? "blocked":"plain");
}
int main(int argc,char**argv){
  CK(dnnl_engine_create(&eng,dnnl_cpu,0)); CK(dnnl_stream_create(&st,eng,dnnl_stream_default_flags));
  int shapes[][3]={{512,4,64},{512,2,64},{256,8,64},{64,32,64}};
  for(int s=0;s<4;s++){int C=shapes[s][0],H=shapes[s][1],N=shapes[s][2];
    double flops=2.0*N*C*C*H*H*9;
    dnnl_dims_t sd={N,C,H,H}, wd={C,C,3,3}; dnnl_dims_t str={1,1},pl={1,1},pr={1,1};
    for(int alg=0;alg<2;alg++){
    dnnl_memory_desc_t src,dst,w,srcany,dstany;
    CK(dnnl_memory_desc_init_by_tag(&src,4,sd,dnnl_f32,dnnl_nhwc)); CK(dnnl_memory_desc_init_by_tag(&dst,4,sd,dnnl_f32,dnnl_nhwc));
    CK(dnnl_memory_desc_init_by_tag(&srcany,4,sd,dnnl_f32,dnnl_format_tag_any)); CK(dnnl_memory_desc_init_by_tag(&dstany,4,sd,dnnl_f32,dnnl_format_tag_any));
    CK(dnnl_memory_desc_init_by_tag(&w,4,wd,dnnl_f32,dnnl_format_tag_any));
    dnnl_alg_kind_t ak = alg? dnnl_convolution_winograd: dnnl_convolution_direct;
    for(int kind=0;kind<3;kind++){
      printf("C=%d H=%d N=%d %s %s\n",C,H,N,alg?"winograd(any layout)":"direct(nhwc)", kind==0?"fwd":kind==1?"bwd-data":"bwd-weights");
      dnnl_convolution_desc_t fd,bd; dnnl_primitive_desc_iterator_t it; dnnl_primitive_desc_t hint;
      dnnl_memory_desc_t *S=alg?&srcany:&src,*D=alg?&dstany:&dst;
      if(dnnl_convolution_forward_desc_init(&fd,dnnl_forward_training,ak,S,&w,NULL,D,str,pl,pr)!=dnnl_success){printf("  unsupported\n");continue;}
      if(dnnl_primitive_desc_create(&hint,&fd,NULL,eng,NULL)!=dnnl_success){printf("  no impl\n");continue;}
      const_dnnl_op_desc_t od=&fd;
      if(kind==1){CK(dnnl_convolution_backward_data_desc_init(&bd,ak,S,&w,D,str,pl,pr)); od=&bd;}
      if(kind==2){CK(dnnl_convolution_backward_weights_desc_init(&bd,ak,S,&w,NULL,D,str,pl,pr)); od=&bd;}
      if(dnnl_primitive_desc_iterator_create(&it,od,NULL,eng,kind?hint:NULL)!=dnnl_success){printf("  no impl\n");continue;}
      do{ dnnl_primitive_desc_t pd=dnnl_primitive_desc_iterator_fetch(it); timeit(pd,kind,flops); dnnl_primitive_desc_destroy(pd);} while(dnnl_primitive_desc_iterator_next(it)==dnnl_success);
      dnnl_primitive_desc_iterator_destroy(it);
    }}
  }
}
