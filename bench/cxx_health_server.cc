// bench_cxx_health_server — the baseline for the GetHealth benchmark: an
// asynchronous (CompletionQueue) gRPC C++ server from Debian's
// libgrpc++-dev 1.51 that serves kubemedic.v1.HealthService/GetHealth and
// nothing else.
//
//   bench_cxx_health_server --mirror HOST:PORT --target NAME
//                           [--listen HOST:PORT] [--threads N]
//                           [--tls-cert F --tls-key F [--tls-ca F]]
//
// With --tls-cert and --tls-key it serves TLS; with --tls-ca too, mutual
// TLS that requires and verifies a client certificate signed by that CA —
// kubemedicd's `tls.clientCertificates: require`. (--mirror stays
// plaintext: a kubemedicd on loopback.)
//
// What it answers. At start it asks the kubemedicd at --mirror for
// GetHealth(NAME) once and keeps that TargetHealth as its template, so both
// servers answer the very same message (same target fields, last_result,
// last_transition, consecutive; same packed size, printed at start). Per
// call it checks the request's target (NOT_FOUND otherwise), copies the
// template into the response (the allocation a real handler building its
// answer would do) and lets gRPC serialize it. No storage: the ratio
// kubemedicd / this server is what kubemedicd's own path costs, SQLite
// reads included.
//
// Threads. N threads, each with its own server completion queue and its own
// outstanding RequestGetHealth — the same model as kubemedicd's km_rpc
// (--threads N, one queue per thread). Logs one line like kubemedicd's:
//   msg="cxx server started" listen=127.0.0.1:PORT threads=N size=BYTES
// and stops cleanly on SIGTERM or SIGINT.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kubemedic/v1/health.grpc.pb.h"

namespace {

using kubemedic::v1::GetHealthRequest;
using kubemedic::v1::HealthService;
using kubemedic::v1::TargetHealth;

struct Shared {
  TargetHealth tmpl;
  std::string target;
};

// One GetHealth call in progress: the classic async state machine.
class Call {
 public:
  Call(HealthService::AsyncService* svc, grpc::ServerCompletionQueue* cq,
       const Shared* sh)
      : svc_(svc), cq_(cq), sh_(sh), responder_(&ctx_) {
    svc_->RequestGetHealth(&ctx_, &req_, &responder_, cq_, cq_, this);
  }

  // ok = the operation of the current state completed normally.
  void Proceed(bool ok) {
    if (state_ == kRequested) {
      if (!ok) {  // shutting down: the request was withdrawn
        delete this;
        return;
      }
      new Call(svc_, cq_, sh_);  // keep one request outstanding
      state_ = kFinishing;
      if (req_.target() != sh_->target) {
        responder_.FinishWithError(
            grpc::Status(grpc::StatusCode::NOT_FOUND,
                         "target \"" + req_.target() + "\" not found"),
            this);
        return;
      }
      resp_.CopyFrom(sh_->tmpl);
      responder_.Finish(resp_, grpc::Status::OK, this);
    } else {
      delete this;
    }
  }

 private:
  enum State { kRequested, kFinishing };
  HealthService::AsyncService* svc_;
  grpc::ServerCompletionQueue* cq_;
  const Shared* sh_;
  grpc::ServerContext ctx_;
  GetHealthRequest req_;
  TargetHealth resp_;
  grpc::ServerAsyncResponseWriter<TargetHealth> responder_;
  State state_ = kRequested;
};

void Serve(HealthService::AsyncService* svc, grpc::ServerCompletionQueue* cq,
           const Shared* sh) {
  new Call(svc, cq, sh);
  void* tag;
  bool ok;
  while (cq->Next(&tag, &ok)) static_cast<Call*>(tag)->Proceed(ok);
}

[[noreturn]] void Usage() {
  std::fprintf(stderr,
               "usage: bench_cxx_health_server --mirror HOST:PORT "
               "--target NAME [--listen HOST:PORT] [--threads N] "
               "[--tls-cert F --tls-key F [--tls-ca F]]\n");
  std::exit(2);
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    std::fprintf(stderr, "bench_cxx_health_server: cannot read %s\n",
                 path.c_str());
    std::exit(1);
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  std::string mirror, listen = "127.0.0.1:0", cert, key, ca;
  Shared sh;
  int threads = 1;

  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (i + 1 >= argc) Usage();
    if (a == "--mirror") {
      mirror = argv[++i];
    } else if (a == "--target") {
      sh.target = argv[++i];
    } else if (a == "--listen") {
      listen = argv[++i];
    } else if (a == "--threads") {
      threads = std::atoi(argv[++i]);
    } else if (a == "--tls-cert") {
      cert = argv[++i];
    } else if (a == "--tls-key") {
      key = argv[++i];
    } else if (a == "--tls-ca") {
      ca = argv[++i];
    } else {
      Usage();
    }
  }
  if (mirror.empty() || sh.target.empty() || threads < 1 || threads > 64 ||
      cert.empty() != key.empty() || (!ca.empty() && cert.empty()))
    Usage();

  // Signals are taken by sigwait below; every thread inherits the mask.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  {
    auto ch = grpc::CreateChannel(mirror, grpc::InsecureChannelCredentials());
    auto stub = HealthService::NewStub(ch);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    GetHealthRequest req;
    req.set_target(sh.target);
    grpc::Status st = stub->GetHealth(&ctx, req, &sh.tmpl);
    if (!st.ok()) {
      std::fprintf(stderr,
                   "bench_cxx_health_server: GetHealth(%s) at %s: %s\n",
                   sh.target.c_str(), mirror.c_str(),
                   st.error_message().c_str());
      return 1;
    }
  }

  HealthService::AsyncService svc;
  grpc::ServerBuilder b;
  int port = 0;
  std::shared_ptr<grpc::ServerCredentials> creds =
      grpc::InsecureServerCredentials();
  if (!cert.empty()) {
    grpc::SslServerCredentialsOptions o(
        ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                   : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    o.pem_root_certs = ca.empty() ? "" : ReadFile(ca);
    o.pem_key_cert_pairs.push_back({ReadFile(key), ReadFile(cert)});
    creds = grpc::SslServerCredentials(o);
  }
  b.AddListeningPort(listen, creds, &port);
  b.RegisterService(&svc);
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs;
  for (int i = 0; i < threads; i++) cqs.push_back(b.AddCompletionQueue());
  std::unique_ptr<grpc::Server> server = b.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "bench_cxx_health_server: cannot listen on %s\n",
                 listen.c_str());
    return 1;
  }
  std::string host = listen.substr(0, listen.rfind(':'));
  std::fprintf(stderr,
               "level=info msg=\"cxx server started\" listen=%s:%d "
               "threads=%d size=%zu tls=%s\n",
               host.c_str(), port, threads, sh.tmpl.ByteSizeLong(),
               ca.empty() ? (cert.empty() ? "off" : "on") : "mutual");
  std::fflush(stderr);

  std::vector<std::thread> workers;
  for (int i = 0; i < threads; i++)
    workers.emplace_back(Serve, &svc, cqs[i].get(), &sh);

  int sig = 0;
  sigwait(&stop, &sig);
  server->Shutdown(std::chrono::system_clock::now() +
                   std::chrono::seconds(2));
  for (auto& cq : cqs) cq->Shutdown();
  for (auto& t : workers) t.join();
  std::fprintf(stderr, "level=info msg=\"cxx server stopped\"\n");
  return 0;
}
