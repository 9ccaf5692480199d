/*
 * gRPC server reflection (grpc.reflection.v1 and v1alpha) from the
 * FileDescriptorSet that the build writes with protoc-c
 * --descriptor_set_out --include_imports and embeds in the binary. So
 * grpcurl can list, describe and call every service with no .proto file at
 * hand.
 *
 * At start-up the set is split into its files (kept as the exact bytes the
 * compiler wrote) and indexed: every fully qualified symbol (message,
 * nested message, enum, enum value, field, service, method) maps to its
 * file. A file is answered together with its transitive imports.
 */
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "km_embed.h"

extern const struct km_embedded_file km_descriptor_set[];

struct refl_file {
	const char *name;
	const uint8_t *data;
	size_t len;
	int *deps;
	size_t n_deps;
};

struct refl_symbol {
	const char *name;
	int file;
	bool is_message;
};

struct api_reflection {
	struct km_arena arena;
	struct refl_file *files;
	size_t n_files;
	struct refl_symbol *syms;
	size_t n_syms, cap_syms;
	const char **services;
	size_t n_services;
};

/* ---- loading ------------------------------------------------------------- */

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

static int add_sym(struct api_reflection *r, const char *name, int file,
		   bool is_message)
{
	if (r->n_syms == r->cap_syms) {
		size_t cap = r->cap_syms ? r->cap_syms * 2 : 256;
		struct refl_symbol *s = realloc(r->syms, cap * sizeof *s);

		if (!s)
			return KM_ENOMEM;
		r->syms = s;
		r->cap_syms = cap;
	}
	r->syms[r->n_syms++] = (struct refl_symbol){name, file, is_message};
	return 0;
}

static const char *qualify(struct api_reflection *r, const char *scope,
			   const char *name)
{
	return *scope ? km_arena_printf(&r->arena, "%s.%s", scope, name)
		      : km_arena_strdup(&r->arena, name);
}

static int index_enum(struct api_reflection *r, int file, const char *scope,
		      const Google__Protobuf__EnumDescriptorProto *e)
{
	const char *full = qualify(r, scope, e->name);

	if (!full || add_sym(r, full, file, false))
		return KM_ENOMEM;
	/* Enum values live in the enum's enclosing scope (C++ rules). */
	for (size_t i = 0; i < e->n_value; i++) {
		const char *v = qualify(r, scope, e->value[i]->name);
		if (!v || add_sym(r, v, file, false))
			return KM_ENOMEM;
	}
	return 0;
}

static int index_message(struct api_reflection *r, int file, const char *scope,
			 const Google__Protobuf__DescriptorProto *m)
{
	const char *full = qualify(r, scope, m->name);

	if (!full || add_sym(r, full, file, true))
		return KM_ENOMEM;
	for (size_t i = 0; i < m->n_field; i++) {
		const char *f = qualify(r, full, m->field[i]->name);
		if (!f || add_sym(r, f, file, false))
			return KM_ENOMEM;
	}
	for (size_t i = 0; i < m->n_nested_type; i++)
		if (index_message(r, file, full, m->nested_type[i]))
			return KM_ENOMEM;
	for (size_t i = 0; i < m->n_enum_type; i++)
		if (index_enum(r, file, full, m->enum_type[i]))
			return KM_ENOMEM;
	return 0;
}

static int index_file(struct api_reflection *r, int file,
		      const Google__Protobuf__FileDescriptorProto *fd)
{
	const char *pkg = fd->package ? fd->package : "";

	for (size_t i = 0; i < fd->n_message_type; i++)
		if (index_message(r, file, pkg, fd->message_type[i]))
			return KM_ENOMEM;
	for (size_t i = 0; i < fd->n_enum_type; i++)
		if (index_enum(r, file, pkg, fd->enum_type[i]))
			return KM_ENOMEM;
	for (size_t i = 0; i < fd->n_service; i++) {
		const Google__Protobuf__ServiceDescriptorProto *s =
			fd->service[i];
		const char *full = qualify(r, pkg, s->name);
		const char **sv;

		if (!full || add_sym(r, full, file, false))
			return KM_ENOMEM;
		sv = km_arena_alloc(&r->arena,
				    (r->n_services + 1) * sizeof *sv);
		if (!sv)
			return KM_ENOMEM;
		if (r->n_services)
			memcpy(sv, r->services, r->n_services * sizeof *sv);
		sv[r->n_services++] = full;
		r->services = sv;
		for (size_t k = 0; k < s->n_method; k++) {
			const char *m = qualify(r, full, s->method[k]->name);
			if (!m || add_sym(r, m, file, false))
				return KM_ENOMEM;
		}
	}
	return 0;
}

static int cmp_sym(const void *a, const void *b)
{
	return strcmp(((const struct refl_symbol *)a)->name,
		      ((const struct refl_symbol *)b)->name);
}

int km_api_reflection_load(struct api_reflection **out, struct km_error *err)
{
	const struct km_embedded_file *set = &km_descriptor_set[0];
	const uint8_t *p = set->data, *end = set->data + set->len;
	struct api_reflection *r = calloc(1, sizeof *r);
	Google__Protobuf__FileDescriptorProto **fds = NULL;
	ProtobufCAllocator alloc;
	size_t cap = 0;
	int rc = KM_ECORRUPT;

	*out = NULL;
	if (!r)
		return API_OOM(err);
	km_arena_init(&r->arena, 65536);
	km_arena_protobuf_allocator(&r->arena, &alloc);

	/* FileDescriptorSet: `repeated FileDescriptorProto file = 1`. */
	while (p < end) {
		uint64_t key, len;
		struct refl_file *f;

		if (read_varint(&p, end, &key) || key != ((1 << 3) | 2) ||
		    read_varint(&p, end, &len) || len > (uint64_t)(end - p))
			goto bad;
		if (r->n_files == cap) {
			cap = cap ? cap * 2 : 16;
			f = km_arena_alloc(&r->arena, cap * sizeof *f);
			fds = realloc(fds, cap * sizeof *fds);
			if (!f || !fds)
				goto oom;
			if (r->n_files)
				memcpy(f, r->files, r->n_files * sizeof *f);
			r->files = f;
		}
		f = &r->files[r->n_files];
		memset(f, 0, sizeof *f);
		f->data = p;
		f->len = (size_t)len;
		fds[r->n_files] =
			google__protobuf__file_descriptor_proto__unpack(
				&alloc, f->len, f->data);
		if (!fds[r->n_files])
			goto bad;
		f->name = fds[r->n_files]->name;
		r->n_files++;
		p += len;
	}
	for (size_t i = 0; i < r->n_files; i++) {
		const Google__Protobuf__FileDescriptorProto *fd = fds[i];
		struct refl_file *f = &r->files[i];

		f->deps = km_arena_calloc(&r->arena, fd->n_dependency + 1,
					  sizeof *f->deps);
		if (!f->deps)
			goto oom;
		for (size_t d = 0; d < fd->n_dependency; d++) {
			int found = -1;

			for (size_t k = 0; k < r->n_files && found < 0; k++)
				if (!strcmp(r->files[k].name,
					    fd->dependency[d]))
					found = (int)k;
			if (found < 0)
				goto bad;
			f->deps[f->n_deps++] = found;
		}
		if (index_file(r, (int)i, fd))
			goto oom;
	}
	qsort(r->syms, r->n_syms, sizeof *r->syms, cmp_sym);
	free(fds);
	*out = r;
	return 0;

oom:
	rc = KM_ENOMEM;
bad:
	free(fds);
	km_api_reflection_free(r);
	return km_error_set(err, rc,
			    rc == KM_ENOMEM ? "out of memory"
					    : "the embedded descriptor set is "
					      "malformed (a build problem)");
}

void km_api_reflection_free(struct api_reflection *r)
{
	if (!r)
		return;
	free(r->syms);
	km_arena_free(&r->arena);
	free(r);
}

/* ---- answering ----------------------------------------------------------- */

static int find_file(const struct api_reflection *r, const char *name)
{
	for (size_t i = 0; i < r->n_files; i++)
		if (!strcmp(r->files[i].name, name))
			return (int)i;
	return -1;
}

static const struct refl_symbol *find_sym(const struct api_reflection *r,
					  const char *name)
{
	struct refl_symbol key = {.name = name};

	if (*name == '.')
		key.name++;
	return bsearch(&key, r->syms, r->n_syms, sizeof key, cmp_sym);
}

/* The file and, depth first, everything it imports, each once. */
static int add_with_deps(const struct api_reflection *r, int file, bool *seen,
			 ProtobufCBinaryData *out, size_t *n)
{
	if (seen[file])
		return 0;
	seen[file] = true;
	out[(*n)++] = (ProtobufCBinaryData){r->files[file].len,
					    (uint8_t *)r->files[file].data};
	for (size_t i = 0; i < r->files[file].n_deps; i++)
		add_with_deps(r, r->files[file].deps[i], seen, out, n);
	return 0;
}

static int file_response(struct km_arena *a, const struct api_reflection *r,
			 int file,
			 Grpc__Reflection__V1__ServerReflectionResponse *out)
{
	Grpc__Reflection__V1__FileDescriptorResponse *fr = KM_ARENA_NEW(
		a, Grpc__Reflection__V1__FileDescriptorResponse,
		GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT);
	bool *seen = km_arena_calloc(a, r->n_files, sizeof *seen);

	if (!fr || !seen)
		return KM_ENOMEM;
	fr->file_descriptor_proto = km_arena_calloc(
		a, r->n_files, sizeof *fr->file_descriptor_proto);
	if (!fr->file_descriptor_proto)
		return KM_ENOMEM;
	add_with_deps(r, file, seen, fr->file_descriptor_proto,
		      &fr->n_file_descriptor_proto);
	out->message_response_case =
		GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
	out->file_descriptor_response = fr;
	return 0;
}

static int error_response(struct km_arena *a,
			  Grpc__Reflection__V1__ServerReflectionResponse *out,
			  grpc_status_code code, const char *msg)
{
	Grpc__Reflection__V1__ErrorResponse *e =
		KM_ARENA_NEW(a, Grpc__Reflection__V1__ErrorResponse,
			     GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT);

	if (!e || !(e->error_message = km_arena_strdup(a, msg)))
		return KM_ENOMEM;
	e->error_code = code;
	out->message_response_case =
		GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
	out->error_response = e;
	return 0;
}

API_HANDLER(km_api_reflection_info)
{
	const Grpc__Reflection__V1__ServerReflectionRequest *q =
		(const void *)req;
	const struct api_reflection *r = API_OF(ctx)->refl;
	struct km_arena *a = ctx->arena;
	Grpc__Reflection__V1__ServerReflectionResponse *out = KM_ARENA_NEW(
		a, Grpc__Reflection__V1__ServerReflectionResponse,
		GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT);
	const struct refl_symbol *sym;
	char *msg;
	int rc = 0, file;

	if (!out)
		return API_OOM(err);
	out->valid_host = q->host ? q->host : "";
	out->original_request =
		(Grpc__Reflection__V1__ServerReflectionRequest *)q;

	switch (q->message_request_case) {
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
		file = find_file(r, q->file_by_filename);
		if (file >= 0) {
			rc = file_response(a, r, file, out);
		} else {
			msg = km_arena_printf(a, "file \"%s\" not found",
					      q->file_by_filename);
			rc = msg ? error_response(a, out, GRPC_STATUS_NOT_FOUND,
						  msg)
				 : KM_ENOMEM;
		}
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
		sym = find_sym(r, q->file_containing_symbol);
		if (sym) {
			rc = file_response(a, r, sym->file, out);
		} else {
			msg = km_arena_printf(a, "symbol \"%s\" not found",
					      q->file_containing_symbol);
			rc = msg ? error_response(a, out, GRPC_STATUS_NOT_FOUND,
						  msg)
				 : KM_ENOMEM;
		}
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
		rc = error_response(a, out, GRPC_STATUS_NOT_FOUND,
				    "kubemedic's API defines no extensions");
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
		sym = find_sym(r, q->all_extension_numbers_of_type);
		if (sym && sym->is_message) {
			Grpc__Reflection__V1__ExtensionNumberResponse *e = KM_ARENA_NEW(
				a,
				Grpc__Reflection__V1__ExtensionNumberResponse,
				GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT);
			if (!e)
				return API_OOM(err);
			e->base_type_name = (char *)sym->name;
			out->message_response_case =
				GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
			out->all_extension_numbers_response = e;
		} else {
			msg = km_arena_printf(a,
					      "message type \"%s\" not found",
					      q->all_extension_numbers_of_type);
			rc = msg ? error_response(a, out, GRPC_STATUS_NOT_FOUND,
						  msg)
				 : KM_ENOMEM;
		}
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES: {
		Grpc__Reflection__V1__ListServiceResponse *l = KM_ARENA_NEW(
			a, Grpc__Reflection__V1__ListServiceResponse,
			GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT);
		if (!l)
			return API_OOM(err);
		l->service =
			km_arena_calloc(a, r->n_services, sizeof *l->service);
		if (!l->service)
			return API_OOM(err);
		for (size_t i = 0; i < r->n_services; i++) {
			l->service[i] = KM_ARENA_NEW(
				a, Grpc__Reflection__V1__ServiceResponse,
				GRPC__REFLECTION__V1__SERVICE_RESPONSE__INIT);
			if (!l->service[i])
				return API_OOM(err);
			l->service[i]->name = (char *)r->services[i];
		}
		l->n_service = r->n_services;
		out->message_response_case =
			GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
		out->list_services_response = l;
		break;
	}
	default:
		rc = error_response(a, out, GRPC_STATUS_INVALID_ARGUMENT,
				    "empty request: set one of "
				    "file_by_filename, file_containing_symbol, "
				    "file_containing_extension, "
				    "all_extension_numbers_of_type, "
				    "list_services");
		break;
	}
	if (rc)
		return API_OOM(err);
	*resp = &out->base;
	return 0;
}
